#!/usr/bin/env bash
# Side-by-side timing of two music-commander binaries on one generated library.
#
#   scripts/bench-compare.sh OLD_BIN NEW_BIN PRISTINE_DIR [RUNS] [first|noop|all]
#
# PRISTINE_DIR is what `examples/bench --generate N DIR` made (DIR/Music, DIR/mixxxdb.sqlite);
# it is never synced, every run works on a `cp -a` copy under $WORK (default /tmp/bench-compare).
# Runs alternate old, new, old, new … so that load from other processes hits both alike:
# compare the medians and their ratio, never figures from different sessions.
#
# first: a first sync on a fresh copy per run.
# noop:  each binary gets its own copy, synced fully, then one untimed no-op (the new binary
#        writes its base file on the first sync and on the first no-op after an upgrade), then
#        RUNS timed no-ops. The copies are never shared: a binary's first run after the other
#        one rewrites the caches.
# The Mixxx database names the pristine paths, so the music root is the pristine Music folder
# (as in examples/bench.rs); the tool maps those paths into the copy it runs in.
# Peak RSS is /usr/bin/time's %M: the largest single process of the tree, in KiB.
# Wall is %e (10 ms steps): for a 10k no-op (~0.1 s) repeat with hyperfine on the noop-* copies.
# Needs bash, GNU time and python3 (for the medians); results also land in $WORK/results.tsv.
set -euo pipefail

old=$(realpath "$1") new=$(realpath "$2") pristine=$(realpath "$3")
runs=${4:-5} what=${5:-all}
work=${WORK:-/tmp/bench-compare}
mkdir -p "$work/xdg"
results="$work/results.tsv"
: >"$results"

# One sync of $1 (binary) in library copy $2, extra args after; appends "scenario bin wall rss".
run() {
  local scenario=$1 label=$2 bin=$3 lib=$4
  shift 4
  local out rc=0
  (cd "$lib/Music" && XDG_CONFIG_HOME="$work/xdg" MUSIC_COMMANDER_MUSIC_ROOT="$pristine/Music" \
    /usr/bin/time -f '%e %M' -o "$work/time.out" \
    "$bin" --mixxx-db "$lib/mixxxdb.sqlite" sync --json "$@" >"$work/last.json" 2>"$work/last.err") || rc=$?
  if [ $rc -ne 0 ]; then echo "$label $scenario failed (exit $rc):" >&2; cat "$work/last.err" >&2; exit 1; fi
  out=$(tail -n 1 "$work/time.out")
  # A detached `git gc --auto` after large writes would slow the next run down.
  while [ -e "$lib/Music/.git/gc.pid" ]; do sleep 0.1; done
  printf '%s\t%s\t%s\n' "$scenario" "$label" "${out// /$'\t'}" | tee -a "$results"
}

fresh() { rm -rf "$2"; cp -a "$1" "$2"; }

if [ "$what" = first ] || [ "$what" = all ]; then
  for r in $(seq "$runs"); do
    for label in old new; do
      bin=$old; [ $label = new ] && bin=$new
      fresh "$pristine" "$work/first-$label"
      run first "$label" "$bin" "$work/first-$label"
    done
  done
  rm -rf "$work/first-old" "$work/first-new"
fi

if [ "$what" = noop ] || [ "$what" = all ]; then
  for label in old new; do
    bin=$old; [ $label = new ] && bin=$new
    fresh "$pristine" "$work/noop-$label"
    run full "$label" "$bin" "$work/noop-$label"
    run warm "$label" "$bin" "$work/noop-$label"
  done
  for r in $(seq "$runs"); do
    run noop old "$old" "$work/noop-old"
    run noop new "$new" "$work/noop-new"
  done
fi

# Medians per scenario and binary, and new/old.
python3 - "$results" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    s, b, wall, rss = line.split()
    rows[(s, b)].append((float(wall), int(rss)))
print("scenario\tn\told s\tnew s\tnew/old\told MiB\tnew MiB")
for s in ("first", "noop"):
    if (s, "old") in rows and (s, "new") in rows:
        o, n = rows[(s, "old")], rows[(s, "new")]
        mo = statistics.median(w for w, _ in o); mn = statistics.median(w for w, _ in n)
        ro = max(r for _, r in o) / 1024; rn = max(r for _, r in n) / 1024
        print(f"{s}\t{len(o)}\t{mo:.2f}\t{mn:.2f}\t{mn/mo:.3f}\t{ro:.0f}\t{rn:.0f}")
EOF
