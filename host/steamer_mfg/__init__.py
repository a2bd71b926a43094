"""The manufacturer's tools: keys, signed profiles, podlet ID-chip images, verification,
provisioning of steamers at scale and of a board's trusted key (`steamer mfg`). usb holds
the mpremote plumbing (steamer_dev.flash uses it too) and the one lookup of a command
`make venv` installs."""
