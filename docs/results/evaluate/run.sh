#!/usr/bin/env bash
# `conpet evaluate` on a project trained from the demo and on its exported bundle (docs/results/evaluate/README.md).
# Usage: docs/results/evaluate/run.sh WORK_DIR   (from the repository root; WORK_DIR gets the projects; a project
# already there is not trained again)
set -euo pipefail
W=${1:?WORK_DIR}; R=docs/results/evaluate; C="python -m conpet.cli"
mkdir -p "$W"
python $R/make_heldout.py "$W/heldout.jsonl" 200 2026
python $R/make_heldout.py "$W/newnames.jsonl" 200 2026 --new-names
for set in heldout newnames; do   # the bundle reads the same sentences as doccano JSONL
  python -c "from conpet.data.formats import read_sentences as r, write_sentences as w; \
w('$W/$set.doccano.jsonl', r('$W/$set.jsonl')[1], 'doccano')"
done
for name in demo weak; do
  if [ ! -d "$W/$name" ]; then
    $C import-data "$W/$name" resources/demo/demo.jsonl > /dev/null
    extra=(); [ "$name" = weak ] && extra=(--batch-limit 4 --epochs 1)   # 4 batches a step: a weaker model
    $C train "$W/$name" --profile smoke "${extra[@]}" --threads 1 --seed 1 --quiet \
       --type Person --type City --type Company --type Drug --type Disease
    $C train "$W/$name" --profile smoke "${extra[@]}" --threads 1 --seed 1 --quiet   # task 2: the 4 relations
    $C export "$W/$name" "$W/$name.conpet.zip" > /dev/null
  fi
  for set in heldout newnames; do
    sha256sum "$W/$name/project.sqlite" > "$W/$name.sha"
    $C evaluate "$W/$name" "$W/$set.jsonl" --threads 1 --json $R/$name-$set-project.json > $R/$name-$set-project.txt
    sha256sum -c "$W/$name.sha"   # evaluate wrote nothing to the project
    $C evaluate "$W/$name.conpet.zip" "$W/$set.doccano.jsonl" --threads 1 --json $R/$name-$set-bundle.json \
       > $R/$name-$set-bundle.txt
  done
done
python - "$R" <<'PY' | tee "$R/agreement.txt"
import json, sys
from pathlib import Path
r = Path(sys.argv[1])
for p in sorted(r.glob("*-project.json")):
    a, b = json.loads(p.read_text()), json.loads(p.with_name(p.name.replace("-project", "-bundle")).read_text())
    differ = [k for k in a if k not in ("file", "format", "seconds") and a[k] != b[k]]
    print(f"{p.stem.replace('-project', '')}: project acc {100 * a['accuracy']:.2f} F1 {100 * a['macro_f1']:.2f} "
          f"routing {100 * a['routing_accuracy']:.2f} oracle {100 * a['oracle_routing_accuracy']:.2f} "
          f"({a['seconds']:.0f} s) | bundle acc {100 * b['accuracy']:.2f} F1 {100 * b['macro_f1']:.2f} "
          f"({b['seconds']:.0f} s) | fields that differ: {differ or 'none'}")
PY
