"""Makes the README's screenshots from real windows with real content (a developer tool).

    python -m app.screenshots prepare DIR          # the demo project, two learnt tasks, whole-project predictions
    ../shared/tools/xshot -w 20 OUT.png -- python -m app.screenshots show DIR --tab "Routing review"
    ../shared/tools/xshot -w 60 OUT.png -- python -m app.screenshots show DIR --tab Training --train
    ../shared/tools/xshot -w 20 OUT.png -- python -m app.screenshots show DIR --tab Types --type located_in
    python -m app.screenshots unlabel DIR --sentence "levothyroxine"   # its gold labels removed
    ../shared/tools/xshot -w 20 OUT.png -- python -m app.screenshots show DIR --sentence levothyroxine --decide some

``prepare`` trains on the demo: task 1 = Person, City, Company; task 2 = works_for, located_in, born_in
(Drug, Disease and treats stay untrained, for a live training shot with ``--train``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

TASKS = [("Person", "City", "Company"), ("works_for", "located_in", "born_in")]


def prepare(folder: Path, budget: str = "smoke") -> None:
    from app import jobs

    class Print:
        last = ""

        def report(self, event) -> None:
            line = f"{100 * event.fraction:5.1f}% {event.message}"
            if line[:30] != self.last[:30]:
                print(line, flush=True)
            self.last = line

        def cancel_requested(self) -> bool:
            return False

    if not (folder / "project.sqlite").exists():
        jobs.create_demo_project(folder)
    from conpet.model.backbones import default_device
    from conpet.store import Project

    with Project.open(folder) as p:
        learnt = {t.name for t in p.types.list() if t.task_id is not None}
    for types in TASKS:
        if set(types) <= learnt:
            continue
        out = jobs.train_next_task(jobs.TrainRequest(folder, budget=budget, device=default_device(),
                                                     types=types), Print())
        print("learnt", out.task_index, out.types, out.metrics.get("whole_acc"), flush=True)
    res = jobs.predict_project(folder, Print())
    print(f"{res.predictions} predictions in {res.seconds:.1f} s", flush=True)


def unlabel(folder: Path, sentence: str) -> None:
    """Delete the gold labels of the first sentence containing ``sentence``, so that the latest run's real
    predictions on its mentions are shown as suggestions (the detector that proposes mentions on raw
    text is the engine's part of issue 14)."""
    from conpet.store import Project

    with Project.open(folder) as p:
        sid = p.sentences.ids(sentence)[0]
        for a in sorted(p.annotations.for_sentence(sid), key=lambda a: a.kind != "relation"):
            p.annotations.delete(a.id, author="screenshots")
        print(f"sentence {sid}: {len(p.predictions.for_sentence(sid))} predictions to suggest", flush=True)


def decide(label, how: str) -> None:
    """``select``: select the first suggestion (as Tab would); ``some``: accept the first, reject the
    second of those left (as Space and Delete would) and select the next."""
    label.queue.has_run()  # the queue is ordered before the decisions, as when a person opens the view
    if not label.suggestions:
        return
    if how == "select":
        label.cycle_suggestion(1)
        return
    label.select_suggestion(label.suggestions[0].id)
    label.accept_selected()
    if len(label.suggestions) >= 2:
        label.select_suggestion(label.suggestions[1].id)
        label.reject_selected()
    label.select_suggestion(label.suggestions[0].id if label.suggestions else None)


def show(folder: Path, tab: str, train: bool, sentence: str | None, decide_how: str | None = None,
         type_name: str | None = None) -> int:
    os.environ.setdefault("CONPET_HOME", str(folder.parent))
    from PySide6.QtCore import QTimer

    from app import dialogs
    from app.main import make_application
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.views.train_dialog import TrainChoice

    app = make_application(sys.argv[:1])
    dialogs.answer_without_asking()
    w = MainWindow(AppSettings(folder.parent / "screenshots.ini"))
    w.resize(1280, 800)
    w.show()
    w.open_project(folder)
    w.show_tab(tab)
    if sentence:
        sid = next((i for i in w.model.sentence_ids(sentence)), None)
        if sid is not None:
            w.views["Label"].select_sentence(sid)
            w.views["Predictions"].select_sentence(sid)
    routing = w.views["Routing review"]
    routing.select_first()
    chosen = next((t for t in w.model.types() if t.name == type_name), None)
    if chosen is not None:  # its head and tail lists show below the table
        w.views["Types"].select_type(chosen.id)

    if tab == "Label" and decide_how:
        decide(w.views["Label"], decide_how)
    elif tab == "Label":
        label = w.views["Label"]
        ed = label.editor
        anns = [a for a in label._annotations if a.kind == "relation"]
        if anns:
            label.focus(anns[0].id)
        ents = [a for a in label._annotations if a.kind == "entity"]
        if ents:
            ed.select_span(ents[0].start, ents[0].end)
            ed.clear_selection()

    def start_training() -> None:
        if w.host.is_busy("preload"):
            QTimer.singleShot(200, start_training)
            return
        types = [t for t in w.model.types() if t.task_id is None]
        method = w.views["Training"].model_lock()[0] or "dynamic-typesel"  # a new task continues the model
        choice = TrainChoice(tuple(t.id for t in types), tuple(t.name for t in types), method, "minilm", "cpu",
                             "smoke", 5)
        w.views["Training"].start(choice, overrides={"batch_limit": 150})

    if train:
        QTimer.singleShot(100, start_training)
    return app.exec()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshots")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("folder", type=Path)
    p.add_argument("--budget", default="smoke")
    s = sub.add_parser("show")
    s.add_argument("folder", type=Path)
    s.add_argument("--tab", default="Label")
    s.add_argument("--train", action="store_true")
    s.add_argument("--sentence", default=None, help="select the first sentence containing this text")
    s.add_argument("--type", default=None, help="select this type in the Types tab")
    s.add_argument("--decide", choices=("select", "some"), default=None,
                   help="Label: select the first suggestion, or accept one and reject another")
    u = sub.add_parser("unlabel")
    u.add_argument("folder", type=Path)
    u.add_argument("--sentence", required=True, help="the first sentence containing this text")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.cmd == "prepare":
        prepare(args.folder.resolve(), args.budget)
        return 0
    if args.cmd == "unlabel":
        unlabel(args.folder.resolve(), args.sentence)
        return 0
    return show(args.folder.resolve(), args.tab, args.train, args.sentence, args.decide, args.type)


if __name__ == "__main__":
    sys.exit(main())
