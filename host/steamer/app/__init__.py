"""The consumer's web app, `steamer app`: a local web server (server.py: its routes, its
guard against other pages and hosts, its live channel) over the host library
(steamer.live's Hub and the store), and the pages it serves (static/). Used by consumers
in their browser; the tests drive it with Playwright."""
