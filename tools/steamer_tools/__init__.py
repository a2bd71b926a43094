"""Developer and manufacturer tools behind `steamer sim`, `steamer dev` and `steamer mfg`."""
