"""The experiments, as plain functions: `continual` (the paper's protocol over named data sets, `conpet bench`),
the detector's, the relation suggesters' and the thread-count benches. Their commands' argument parsing is in
`conpet.cli.bench`, the only importer of this package."""
