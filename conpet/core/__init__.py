"""The engine's foundation: validated settings (`config`), the user-facing errors (`errors`), the small protocols
the trainers talk through (`protocols`: logit cache, progress sink), threads and seeds (`runtime`) and the
terminal progress bar every command draws (`progress_bar`). Imports nothing else of `conpet`."""
