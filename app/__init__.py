"""ConPET Studio desktop app (PySide6). Depends on `conpet`; never the other way round."""
