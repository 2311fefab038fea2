"""The assignment's studies as library code: resource accounting (`accounting`), grid sweeps
and run comparison (`sweep`, `compare`), and small numeric toys (`toys`). The `bpelm account`,
`sweep`, `compare` and `experiment` commands are thin shells over these modules."""
