"""The continual methods, one file each (`static`, `dynamic`, `dynamic_lda`, the baselines, `limitless`) over
`base`, made by name through `registry`; what they share: the statistical router (`router`), replay batches
(`replay`), the episodic memory (`memory`), and what a step plans and reports (`training_report`,
`work_progress`). Imports `conpet.core`, `conpet.data` and `conpet.model`; never the store or the project."""
