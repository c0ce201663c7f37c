"""The experiments, as plain functions: `continual` (the paper's protocol over named data sets, `conpet bench`),
the detector's, the relation suggesters', the thread-count and the bundle-prediction (`predict`) benches.
Their commands' argument parsing is in `conpet.cli` (`bench`, and `bundle` for `bench-predict`), the only
importer of this package."""
