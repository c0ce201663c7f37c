"""Measuring a model: the accuracy matrix and forgetting (`metrics`), a method run over a task sequence
(`continual`), scoring on a labelled file (`labelled_file`) and span metrics (`span_metrics`). Knows no store."""
