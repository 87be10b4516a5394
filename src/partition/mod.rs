//! Partition tables (GPT and MBR) as sfdisk reads and writes them.
