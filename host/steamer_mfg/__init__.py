"""The manufacturer's tools: keys, signed profiles, podlet ID-chip images, verification,
provisioning of steamers at scale and of a board's trusted key (`steamer mfg`)."""
