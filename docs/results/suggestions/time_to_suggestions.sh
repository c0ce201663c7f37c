#!/usr/bin/env bash
# Time from importing plain text into a trained project to its first suggestions:
# `conpet import-data PROJECT_DIR new.txt`, then `conpet predict PROJECT_DIR` (the app's Predict whole project).
# usage: time_to_suggestions.sh PROJECT_DIR [N]   (a trained project, e.g. the one relation-bench --project kept;
# the text: the demo's held-out test sentences, one per line, or the first N of them)
set -euo pipefail
proj=$1
n=${2:-1000}
py=${PY:-python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py - "$tmp/new.txt" "$n" <<'PY'
import sys
from conpet.relation_bench import DEMO, _split
_, test = _split(DEMO, 0.2, 0)
open(sys.argv[1], "w", encoding="utf-8").write("".join(s.text + "\n" for s in test[: int(sys.argv[2])]))
PY
echo "plain text: $(wc -l < "$tmp/new.txt") sentence(s), one per line"
t0=$(date +%s.%N)
$py -m conpet.cli import-data "$proj" "$tmp/new.txt" --option split=line
t1=$(date +%s.%N)
$py -m conpet.cli predict "$proj" --out "$tmp/pred.jsonl" --quiet --device cpu --threads 1
t2=$(date +%s.%N)
$py - "$tmp/pred.jsonl" "$tmp/new.txt" <<'PY'
import json, sys
new = {line.strip() for line in open(sys.argv[2], encoding="utf-8") if line.strip()}
lines = [json.loads(x) for x in open(sys.argv[1], encoding="utf-8")]
got = [p for x in lines if x["text"] in new for p in x["predictions"]]
ents = [p for p in got if p["kind"] == "entity" and "detector" in p["expert_scores"]]
rels = [p for p in got if p["kind"] == "relation" and "related" in p["expert_scores"]]
with_any = sum(1 for x in lines if x["text"] in new and x["predictions"])
print(f"suggestions on the new sentences: {len(ents)} mention(s), {len(rels)} pair(s); "
      f"{with_any} of {len(new)} sentence(s) got at least one")
PY
echo "import-data: $(echo "$t1 - $t0" | bc) s; predict (whole project, first suggestions): $(echo "$t2 - $t1" | bc) s;" \
     "total: $(echo "$t2 - $t0" | bc) s"
