"""The project layer: the only code that knows both the store (``conpet.store``) and the methods
(``conpet.methods``).

- ``model``: where a project's current model lives and what it recorded;
- ``training``: learn the project's next task (``conpet train``, the app's Train);
- ``splits``: each example's train/valid/test split, fixed the first time a step sees it;
- ``predict``: predict every marked mention and pair of a project (``conpet predict PROJECT_DIR``, the app);
- ``bundles``: export the current model as a bundle, import a bundle into a project (the file format is
  ``conpet.bundle``'s);
- ``run_progress``: the run record's progress sink;
- ``backbones``: one loaded backbone kept for the jobs of a long-lived process (the app);
- ``housekeeping``: orphaned run and temporary folders collected when a project opens;
- ``lease``: one model-changing job (training, a prediction that writes, a bundle import) per project at a
  time, across processes and machines (``hold_lease``).

Nothing is imported here, so that ``import conpet.project.x`` loads only what ``x`` needs.
"""
