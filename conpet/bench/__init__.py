"""The experiments: `conpet bench` (`continual`: the paper's protocol over named data sets), the detector's, the
relation suggesters' and the thread-count benches. Only `conpet.cli` imports this package."""
