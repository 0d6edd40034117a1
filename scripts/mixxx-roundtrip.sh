#!/usr/bin/env bash
# End-to-end check of `music-commander import` against the real Mixxx (Debian's 2.3.3).
#
#   scripts/mixxx-roundtrip.sh            # build the release binary, run, print PASS/FAIL
#   MUSIC_COMMANDER=path/to/bin scripts/mixxx-roundtrip.sh
#   KEEP=1 scripts/mixxx-roundtrip.sh     # keep the temp dir (databases, logs, repos)
#   STOP_BEFORE_IMPORT=1 ...              # only the set-up: scans, edits, desktop sync
#   MIXXX_TIMEOUT=120 SETTLE=4            # seconds per Mixxx session / before quitting
#
# Two git-annex clones ("desktop", "laptop") of a few generated audio files, each with its own
# Mixxx database made by the real Mixxx scanning its own music folder (different paths). The
# desktop's DB is edited while Mixxx is closed (ratings, colors, crates, titles, a cleared
# comment, keys and BPMs set as Mixxx stores a user's edit; one BPM and one key beside the
# laptop's own beat grid / key analysis, which import must report as not importable and leave
# alone; a hand-fixed, locked beat grid). Both clones manage every field including `beatgrid`
# (off by default). `music-commander sync` writes the edits to git-annex, `git annex sync` carries them to
# the laptop, `music-commander import` writes them into the laptop's DB. Then the laptop DB is
# opened in the real Mixxx (three tracks are loaded into decks, so Mixxx's track load + save
# path runs too), Mixxx quits cleanly, and the script checks that every imported value survived,
# that the backup holds the pre-import DB, that the DB is intact, that Mixxx logged no database
# errors, and that the laptop's next sync writes nothing. Exit 0 only on PASS.
#
# Mixxx runs under Xvfb (it blocks on dialogs without an X server); first-start dialogs are
# answered with xdotool; Mixxx is quit with Ctrl+Q (it has no SIGTERM handler) and the script
# waits for "Mixxx shutdown complete" in its log. BPM and key analysis are switched off in the
# Mixxx settings so the analyser does not replace values on the deck-loaded tracks (it would
# replace a BPM that has no beat grid behind it: that is Mixxx's own rule, not an import bug).
set -euo pipefail

t_start=$(date +%s)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/.." && pwd)
TIMEOUT=${MIXXX_TIMEOUT:-120}

log() { printf '[%3ss] %s\n' "$(($(date +%s) - t_start))" "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
sq() { printf "'%s'" "${1//\'/\'\'}"; } # SQL string literal

# ---------------------------------------------------------------- 1. tools
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have mixxx || need_pkgs+=(mixxx)
have Xvfb || need_pkgs+=(xvfb)
have xauth || need_pkgs+=(xauth)
have xdotool || need_pkgs+=(xdotool)
have sqlite3 || need_pkgs+=(sqlite3)
have sox || need_pkgs+=(sox)
have git-annex || need_pkgs+=(git-annex)
have git || need_pkgs+=(git)
have python3 || need_pkgs+=(python3) # reads the --json reports
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || die "missing ${need_pkgs[*]}; run: apt-get install -y --no-install-recommends ${need_pkgs[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
fi
mixxx_version=$(mixxx --help 2>&1 | sed -n '1s/ - .*//p' || true) # --help exits non-zero
log "$mixxx_version, git-annex $(git annex version --raw 2>/dev/null || git annex version | head -n 1)"

if [ -n "${MUSIC_COMMANDER:-}" ]; then
  mc=$(realpath "$MUSIC_COMMANDER")
else
  log "cargo build --release"
  (cd "$repo_root" && cargo build --release --quiet)
  mc="$repo_root/target/release/music-commander"
fi
[ -x "$mc" ] || die "no music-commander binary at $mc"
if [ "${STOP_BEFORE_IMPORT:-0}" != 1 ] && ! "$mc" import --help >/dev/null 2>&1; then
  die "$mc has no import command (build a branch that has it, or STOP_BEFORE_IMPORT=1 for the set-up only)"
fi

# ---------------------------------------------------------------- temp dir, cleanup
T=$(mktemp -d "${TMPDIR:-/tmp}/mc-roundtrip.XXXXXX")
XVFB_PID='' MIXXX_PID=''
cleanup() {
  local rc=$?
  if [ -n "$MIXXX_PID" ] && kill -0 "$MIXXX_PID" 2>/dev/null; then kill -9 "$MIXXX_PID" 2>/dev/null || true; fi
  if [ -n "$XVFB_PID" ] && kill -0 "$XVFB_PID" 2>/dev/null; then kill "$XVFB_PID" 2>/dev/null || true; wait "$XVFB_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $T"; else rm -rf "$T"; fi
  echo "time: $(($(date +%s) - t_start)) s"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HOME="$T/home" XDG_CONFIG_HOME="$T/xdg" LANG=C.UTF-8 LC_ALL=C.UTF-8
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$T/logs"
# One config for both machines: every field, the beat grid included (it is off by default).
mkdir -p "$XDG_CONFIG_HOME/music-commander"
cat >"$XDG_CONFIG_HOME/music-commander/config.toml" <<'TOML'
[sync]
fields = ["rating", "bpm", "color", "key", "artist", "title", "album", "genre", "year",
  "tracknumber", "comment", "crate", "cues", "beatgrid"]
TOML
git config --global user.name "Roundtrip DJ"
git config --global user.email dj@example.invalid
git config --global init.defaultBranch main
git config --global annex.autocommit false

# ---------------------------------------------------------------- Xvfb + Mixxx automation
start_xvfb() {
  : >"$T/display"
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$T/display" >>"$T/logs/xvfb.log" 2>&1 &
  XVFB_PID=$!
  local i
  for i in $(seq 100); do [ -s "$T/display" ] && break; sleep 0.1; done
  [ -s "$T/display" ] || die "Xvfb did not start (see $T/logs/xvfb.log)"
  export DISPLAY=":$(tr -d '[:space:]' <"$T/display")"
  log "Xvfb on $DISPLAY"
}

win() { xdotool search --onlyvisible --name "$1" 2>/dev/null | head -n 1 || true; }

# mixxx_session NAME SETTINGS_DIR MUSIC_DIR SCAN(yes|no) [FILE...]
# Starts Mixxx on SETTINGS_DIR/mixxxdb.sqlite, answers the first-start dialogs (the library
# folder dialog gets MUSIC_DIR), waits for "Running Mixxx" (and "Scan finished" when SCAN=yes),
# lets it settle, quits with Ctrl+Q and waits for a clean shutdown. FILEs are loaded into decks.
mixxx_session() {
  local name=$1 settings=$2 music=$3 scan=$4
  shift 4
  local mlog="$settings/mixxx.log" t0 t_quit=0 wid running=0 scanned=0 quit_sent=0 dir_done=0 snd_done=0
  # A log left by an earlier run would already say "shutdown complete".
  [ -e "$mlog" ] && mv "$mlog" "$T/logs/$name.previous.log"
  if ! kill -0 "$XVFB_PID" 2>/dev/null || ! xdotool getmouselocation >/dev/null 2>&1; then
    log "  Xvfb on $DISPLAY is gone; starting another"
    start_xvfb
  fi
  log "mixxx ($name) start${*:+, decks: $(printf '%s ' "${@##*/}")}"
  mixxx --settingsPath "$settings/" --logLevel debug --logFlushLevel debug "$@" \
    >"$T/logs/$name.stdout" 2>&1 &
  MIXXX_PID=$!
  t0=$(date +%s)
  while :; do
    if ! kill -0 "$MIXXX_PID" 2>/dev/null; then
      wait "$MIXXX_PID" || true
      MIXXX_PID=''
      break
    fi
    [ $(($(date +%s) - t0)) -lt "$TIMEOUT" ] || {
      tail -n 30 "$mlog" >&2 || true
      die "mixxx ($name) did not finish within ${TIMEOUT}s (running=$running scanned=$scanned quit=$quit_sent)"
    }
    if [ $dir_done = 0 ] && wid=$(win '^Choose music library directory$') && [ -n "$wid" ]; then
      xdotool windowfocus --sync "$wid" key --clearmodifiers ctrl+a type --delay 5 "$music"
      sleep 0.3
      xdotool windowfocus --sync "$wid" key --clearmodifiers Return
      dir_done=1
      log "  answered 'Choose music library directory' with $music"
    fi
    if [ $snd_done = 0 ] && wid=$(win '^No Output Devices$') && [ -n "$wid" ]; then
      xdotool windowfocus --sync "$wid" key --clearmodifiers Return
      snd_done=1
      log "  answered 'No Output Devices' (Continue)"
    fi
    [ $running = 1 ] || ! grep -q 'Running Mixxx' "$mlog" 2>/dev/null || { running=1; log "  running"; }
    [ $scanned = 1 ] || ! grep -q 'Scan finished' "$mlog" 2>/dev/null || { scanned=1; log "  scan finished"; }
    if [ $quit_sent = 0 ] && [ $running = 1 ] && { [ "$scan" = no ] || [ $scanned = 1 ]; }; then
      # Let deck loads, analysis writes and the library view settle before quitting.
      sleep "${SETTLE:-4}"
      wid=$(win '^Mixxx$')
      if [ -n "$wid" ]; then
        xdotool windowfocus --sync "$wid" key --clearmodifiers ctrl+q
        quit_sent=1 t_quit=$(date +%s)
        log "  sent Ctrl+Q"
      fi
    elif [ $quit_sent = 1 ] && [ $(($(date +%s) - t_quit)) -ge 30 ] && ! grep -q 'Mixxx shutdown' "$mlog"; then
      # The key press can land while a dialog or a busy main thread swallows it: once more.
      wid=$(win '^Mixxx$')
      [ -z "$wid" ] || xdotool windowfocus --sync "$wid" key --clearmodifiers ctrl+q
      quit_sent=2 t_quit=$(date +%s)
      log "  sent Ctrl+Q again"
    fi
    sleep 0.3
  done
  cp "$mlog" "$T/logs/$name.log"
  grep -q 'Mixxx shutdown complete' "$mlog" || { tail -n 30 "$mlog" >&2; die "mixxx ($name) exited without a clean shutdown"; }
  [ $quit_sent != 0 ] || die "mixxx ($name) exited before it was asked to"
  log "  shutdown complete ($(($(date +%s) - t0)) s)"
}

# Database errors in a Mixxx log: failed queries (LOG_FAILED_QUERY, FwdSqlQuery), SQLite errors,
# debug assertions, and the repairs Mixxx makes at start-up to rows it finds invalid (crates
# without a name, memberships of missing crates or tracks, bad booleans): any of those after an
# import means Mixxx disagreed with what was written.
db_errors() {
  grep -aE 'FAILED QUERY|Failed to (prepare|execute)|QSqlError|database is locked|malformed|DEBUG ASSERT|Critical \[|crates with empty names|crate tracks from non-existent|purged tracks from crates|Fixed boolean values' "$1" |
    grep -avE 'SettingsDAO - Failed to prepare query: Returning default value' || true
  grep -aE '(Error|ERROR|Failed|FAILED)' "$1" | grep -aiE 'sql|database|query' |
    grep -avE 'FAILED QUERY|Failed to (prepare|execute)|SettingsDAO - Failed to prepare query: Returning default value' || true
}

# ---------------------------------------------------------------- 2. audio + repositories
desk="$T/desktop/Music" lap="$T/laptop/Collection"
mkdir -p "$desk" "$T/desktop/mixxx" "$T/laptop/mixxx"
gen() { # gen FILE SECONDS FREQ [TAG=VALUE...]
  local f=$1 secs=$2 freq=$3
  shift 3
  local tags=() first=1 kv
  for kv in "$@"; do
    if [ $first = 1 ]; then tags+=(--comment "$kv"); first=0; else tags+=(--add-comment "$kv"); fi
  done
  mkdir -p "$(dirname "$f")"
  local bits=(-b 16) # Vorbis has no bit depth
  case $f in *.ogg) bits=() ;; esac
  # A tone gated on and off twice a second (120 BPM-ish pulses): short, real, decodable audio.
  sox -n -r 44100 -c 2 "${bits[@]}" "${tags[@]}" "$f" synth "$secs" sine "$freq" synth "$secs" square amod 2 gain -6
}
T1="House/Alpha - Sunrise.flac"
T2="House/Beta – Ünïcode Nacht.flac"
T3="Techno/gamma_loop.wav"
T4="Techno/Deep/delta 04.wav"
T5="Misc/epsilon.ogg"
T6="Misc/zeta (dub).flac"
gen "$desk/$T1" 8 440 TITLE=Sunrise ARTIST=Alpha ALBUM=Dawn GENRE=House DATE=2021 TRACKNUMBER=3 BPM=124 INITIALKEY=Am "COMMENT=warm intro"
gen "$desk/$T2" 7 330 "TITLE=Ünïcode Nacht" ARTIST=Beta "COMMENT=to be cleared"
gen "$desk/$T3" 6 220
gen "$desk/$T4" 6 262
gen "$desk/$T5" 7 392 TITLE=Epsilon ARTIST=Eps
gen "$desk/$T6" 8 494 "TITLE=Zeta (Dub)" ARTIST=Zed BPM=128 INITIALKEY=F#m
log "6 audio files generated"

(cd "$desk" && git init -q && git annex init -q desktop && git annex add -q . && git commit -q -m music)
git clone -q "$desk" "$lap"
(cd "$lap" && git annex init -q laptop && git annex get -q .)
git -C "$desk" remote add laptop "$lap"
annex_sync() { # both directions, metadata only (no work-tree commit, no content)
  (cd "$desk" && git annex sync -q --only-annex --no-content >/dev/null 2>&1)
  (cd "$lap" && git annex sync -q --only-annex --no-content >/dev/null 2>&1)
  (cd "$desk" && git annex sync -q --only-annex --no-content >/dev/null 2>&1)
}
annex_sync
# The laptop's Mixxx sees the collection through another path (a symlink, like a mounted drive),
# so the laptop runs with MUSIC_COMMANDER_MUSIC_ROOT = that path (README "Configuration").
lroot="$T/laptop/usb/Music"
mkdir -p "$(dirname "$lroot")"
ln -s "$lap" "$lroot"
log "git-annex repos: desktop $desk, laptop $lap (its Mixxx sees it as $lroot)"

start_xvfb
# Analysis off: see the header. The first start writes mixxx.cfg; these keys are added after.
analysis_off() {
  local cfg=$1/mixxx.cfg
  printf '\n[BPM]\nBPMDetectionEnabled 0\n\n[Key]\nKeyDetectionEnabled 0\n' >>"$cfg"
}
# The folder is typed into the first-start dialog; under load xdotool has been seen to garble it
# (a scan that found 0 tracks). Then register the folder the other way mixxx-headless.md
# verified (a `directories` row plus RescanOnStartup) and let Mixxx scan again.
scan_library() { # scan_library NAME SETTINGS_DIR MUSIC_DIR
  mixxx_session "$1" "$2" "$3" yes
  local n
  n=$(sqlite3 "$2/mixxxdb.sqlite" 'SELECT count(*) FROM library WHERE mixxx_deleted=0' 2>/dev/null || echo 0)
  [ "$n" = 6 ] && return
  log "  $n tracks after the scan; registering $3 directly and scanning again"
  sqlite3 "$2/mixxxdb.sqlite" "DELETE FROM directories; INSERT INTO directories(directory) VALUES ($(sq "$3"));"
  printf '\n[Library]\nRescanOnStartup 1\n' >>"$2/mixxx.cfg"
  mixxx_session "$1-again" "$2" "$3" yes
}
scan_library desktop-scan "$T/desktop/mixxx" "$desk"
scan_library laptop-scan "$T/laptop/mixxx" "$lroot"
analysis_off "$T/desktop/mixxx"
analysis_off "$T/laptop/mixxx"
ddb="$T/desktop/mixxx/mixxxdb.sqlite" ldb="$T/laptop/mixxx/mixxxdb.sqlite"
for db in "$ddb" "$ldb"; do
  [ -f "$db" ] || die "Mixxx did not create $db"
  n=$(sqlite3 "$db" 'SELECT count(*) FROM library WHERE mixxx_deleted=0')
  [ "$n" = 6 ] || die "$db has $n tracks after the scan, expected 6"
done
under_root() { # under_root DB ROOT: every track location starts with ROOT/ (as Mixxx saw it)
  local n
  n=$(sqlite3 "$1" "SELECT count(*) FROM track_locations WHERE substr(location, 1, length($(sq "$2/"))) = $(sq "$2/")")
  [ "$n" = 6 ] || die "$1: $n of 6 track locations under $2 (Mixxx resolved the folder differently)"
}
under_root "$ddb" "$desk"
under_root "$ldb" "$lroot"
log "both Mixxx scans: 6 tracks each (schema rev $(sqlite3 "$ddb" "SELECT value FROM settings WHERE name='mixxx.schema.version'"))"

# ---------------------------------------------------------------- snapshots
# raw DB ROOT: every column import may touch, as SQL literals, one "path<TAB>column<TAB>value" a line.
raw() {
  local db=$1 root=$2 c
  for c in artist title album genre year tracknumber comment rating color bpm key key_id bpm_lock \
    beats_version beats_sub_version "hex(beats)" keys_version keys_sub_version "hex(keys)" header_parsed; do
    sqlite3 -separator $'\t' "$db" "SELECT substr(tl.location, length($(sq "$root"))+2), '$c',
      replace(quote($c), char(10), '\n') FROM library l JOIN track_locations tl ON tl.id=l.location
      WHERE l.mixxx_deleted=0"
  done
  sqlite3 -separator $'\t' "$db" "SELECT substr(tl.location, length($(sq "$root"))+2), 'crate', quote(c.name)
    FROM crate_tracks ct JOIN crates c ON c.id=ct.crate_id JOIN library l ON l.id=ct.track_id
    JOIN track_locations tl ON tl.id=l.location"
  sqlite3 -separator $'\t' "$db" "SELECT '(crates)', 'crate', quote(name)||' locked='||quote(locked)||
    ' autodj='||quote(autodj_source)||' show='||quote(show) FROM crates"
} 
# cues DB ROOT [ids]: every cue row a DJ makes (not the analyser's type 8), one
# "path<TAB>type hotcue position length label color" a line, as SQL literals; with "ids", the row id first.
cues() {
  local id=""
  [ "${3:-}" = ids ] && id="quote(c.id)||' '||"
  sqlite3 -separator $'\t' "$1" "SELECT substr(tl.location, length($(sq "$2"))+2),
    ${id}quote(c.type)||' '||quote(c.hotcue)||' '||quote(c.position)||' '||quote(c.length)||' '||
    replace(quote(c.label), char(10), '\n')||' '||quote(c.color)
    FROM cues c JOIN library l ON l.id=c.track_id JOIN track_locations tl ON tl.id=l.location
    WHERE c.type IN (1,2,4,5,6,7) ORDER BY 1, 2"
}
# norm DB ROOT: one line a track, "path<TAB>" + the values in NORM_FIELDS order as music-commander
# maps them ('' = absent): what desktop and laptop must agree on after an import.
NORM_FIELDS="rating color bpm key artist title album genre year tracknumber comment crate"
norm() {
  local db=$1 root=$2 t
  t() { printf "replace(replace(coalesce(trim(%s),''), char(10), ' '), char(9), ' ')" "$1"; }
  sqlite3 -separator $'\t' "$db" "SELECT substr(tl.location, length($(sq "$root"))+2),
    CASE WHEN rating>0 THEN rating ELSE '' END,
    CASE WHEN color IS NULL THEN '' ELSE printf('#%06X', color) END,
    CASE WHEN bpm>0 THEN printf('%.2f', bpm) ELSE '' END,
    CASE WHEN key_id>0 THEN 'key_id ' || key_id ELSE '' END,
    $(t artist), $(t title), $(t album), $(t genre), $(t year), $(t tracknumber), $(t comment),
    coalesce((SELECT group_concat(name, ' | ') FROM (SELECT c.name FROM crate_tracks ct
      JOIN crates c ON c.id=ct.crate_id WHERE ct.track_id=l.id ORDER BY c.name)), '')
    FROM library l JOIN track_locations tl ON tl.id=l.location WHERE l.mixxx_deleted=0 ORDER BY 1"
}

# ---------------------------------------------------------------- 3. the DJ's edits on the desktop
mc_run() { # mc_run NAME REPO DB ROOT ARGS... ; output in logs/NAME.{out,err}
  local name=$1 repo=$2 db=$3 root=$4 rc=0
  shift 4
  (cd "$repo" && MUSIC_COMMANDER_MUSIC_ROOT="$root" "$mc" --repo "$repo" --mixxx-db "$db" "$@" \
    >"$T/logs/$name.out" 2>"$T/logs/$name.err") || rc=$?
  if [ $rc -ne 0 ]; then
    cat "$T/logs/$name.out" "$T/logs/$name.err" >&2
    die "music-commander $* ($name) exited $rc"
  fi
}
# Both machines sync once before any edit (README "Several machines" step 1): each gets a base.
mc_run desktop-sync0 "$desk" "$ddb" "$desk" sync
annex_sync
mc_run laptop-sync0 "$lap" "$ldb" "$lroot" sync
annex_sync

where() { printf "location=(SELECT id FROM track_locations WHERE location=%s)" "$(sq "$desk/$1")"; }
sqlite3 "$ddb" <<SQL
BEGIN;
UPDATE library SET rating=5, color=16711680, title='Sunrise (Extended Mix)' WHERE $(where "$T1");
-- BPM 124 (from the tag) corrected to 125 on a track the laptop's Mixxx also has a beat grid for.
UPDATE library SET bpm=125.0, beats=X'0A09090000000000405F4012020800' WHERE $(where "$T1");
UPDATE library SET rating=3, comment='' WHERE $(where "$T2");
UPDATE library SET rating=1, color=255, comment='peak-time tool', year='2019' WHERE $(where "$T3");
-- A key and a BPM as Mixxx stores a user's edit: KeyMap-1.0 blob (C#m = 14, source USER) and a
-- BeatGrid-2.0 blob (126.5 BPM, first beat at frame 0) next to the derived columns.
UPDATE library SET key='C♯m', key_id=14, keys=X'080E2002', keys_version='KeyMap-1.0', keys_sub_version='',
  bpm=126.5, beats=X'0A09090000000000A05F4012020800', beats_version='BeatGrid-2.0', beats_sub_version='',
  genre='Deep Techno' WHERE $(where "$T4");
-- The same track's grid fixed by hand and locked: first beat moved to frame 1000 (protobuf
-- BeatGrid {bpm {126.5}, first_beat {frame_position 1000}}), bpm_lock=1, as Mixxx saves it.
UPDATE library SET beats=X'0A09090000000000A05F40120308E807', bpm_lock=1 WHERE $(where "$T4");
UPDATE library SET artist='Epsilon Ensemble', album='Loops', tracknumber='7' WHERE $(where "$T5");
UPDATE library SET color=65280, genre='Dub', comment='B-side' WHERE $(where "$T6");
-- Key F#m (from the tag) changed to Gm (20) by the user, beside the laptop's own key analysis.
UPDATE library SET key='Gm', key_id=20, keys=X'08142002', keys_sub_version='' WHERE $(where "$T6");
INSERT INTO crates (name, locked, autodj_source) VALUES ('Festival ★', 0, 0);
INSERT INTO crates (name, locked, autodj_source) VALUES ('Warmup/Deep', 0, 0);
INSERT OR IGNORE INTO crate_tracks (crate_id, track_id)
  SELECT (SELECT id FROM crates WHERE name='Festival ★'), id FROM library
  WHERE $(where "$T1") OR $(where "$T3") OR $(where "$T4");
INSERT OR IGNORE INTO crate_tracks (crate_id, track_id)
  SELECT (SELECT id FROM crates WHERE name='Warmup/Deep'), id FROM library WHERE $(where "$T2");
-- Cues as Mixxx 2.3 saves them (CueDAO: every column but the id; positions in samples = frames x 2):
-- on a deck-loaded track hot cues 1 and 3 (labels, one with a newline, colors), a saved loop in
-- slot 4, the main cue (also library.cuepoint), intro and outro; on a track Mixxx does not load,
-- a hot cue and a jump cue.
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 1, 88200, 0, 0, 'Drop', 12913160 FROM library WHERE $(where "$T1");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 1, 176400, 0, 2, 'Vocal "in"' || char(10) || 'két \ ★', 3325508 FROM library WHERE $(where "$T1");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 4, 44100, 88200, 3, 'Loop A', 17663 FROM library WHERE $(where "$T1");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 2, 22050, 0, -1, '', 16711680 FROM library WHERE $(where "$T1");
UPDATE library SET cuepoint=22050 WHERE $(where "$T1");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 6, 0, 44100, -1, '', 255 FROM library WHERE $(where "$T1");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 7, 220500, 44100, -1, '', 255 FROM library WHERE $(where "$T1");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 1, 132300, 0, 7, 'Outro mix', 16306688 FROM library WHERE $(where "$T5");
INSERT INTO cues (track_id, type, position, length, hotcue, label, color)
  SELECT id, 5, 200000, -100000, 1, '', 16306688 FROM library WHERE $(where "$T5");
COMMIT;
SQL
log "desktop DB edited (ratings, colors, titles, comments incl. a cleared one, keys, BPMs, a locked beat grid, 2 crates, 8 cues)"
mc_run desktop-sync "$desk" "$ddb" "$desk" sync --json
written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"]["written"])' "$T/logs/desktop-sync.out")
[ "$written" = 6 ] || die "desktop sync wrote $written files, expected 6 (see $T/logs/desktop-sync.out)"
annex_sync
log "desktop sync wrote $written files; git annex sync desktop <-> laptop done"
norm "$ddb" "$desk" >"$T/desktop.norm"
cues "$ddb" "$desk" >"$T/desktop.cues"
# grids DB ROOT: the beat-grid columns of every track with a grid, as SQL literals.
grids() {
  sqlite3 -separator $'\t' "$1" "SELECT substr(tl.location, length($(sq "$2"))+2),
    quote(l.beats)||' '||quote(l.beats_version)||' '||quote(l.beats_sub_version)||' '||quote(l.bpm_lock)||' '||quote(l.bpm)
    FROM library l JOIN track_locations tl ON tl.id=l.location
    WHERE length(l.beats) > 0 OR length(l.beats_version) > 0 ORDER BY 1"
}
grids "$ddb" "$desk" >"$T/desktop.grids"
grep -qF "X'0A09090000000000A05F40120308E807' 'BeatGrid-2.0' '' 1 126.5" <(grep -F "$T4" "$T/desktop.grids") ||
  die "the desktop's locked grid is not as written: $(cat "$T/desktop.grids")"

if [ "${STOP_BEFORE_IMPORT:-0}" = 1 ]; then
  cat "$T/desktop.norm"
  echo "STOPPED before import (STOP_BEFORE_IMPORT=1): set-up, real Mixxx scans and desktop sync OK"
  exit 0
fi

# ---------------------------------------------------------------- 4. import on the laptop, then Mixxx
norm "$ldb" "$lroot" >"$T/laptop.before-import.norm"
raw "$ldb" "$lroot" | sort >"$T/laptop.before-import.raw"
mc_run laptop-import "$lap" "$ldb" "$lroot" import --json
log "laptop import: $(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print("%s files, %s tracks, %s fields written, crates created %s; not importable: %s" % (d["files"]["imported"],
  d["tracks_written"], d["fields_written"], d["crates_created"],
  ["%s %s" % (u["paths"][0], u["field"]) for u in d["unwritable"]] or "none"))' "$T/logs/laptop-import.out")"
norm "$ldb" "$lroot" >"$T/laptop.imported.norm"
raw "$ldb" "$lroot" | sort >"$T/laptop.imported.raw"
cues "$ldb" "$lroot" >"$T/laptop.imported.cues"
cues "$ldb" "$lroot" ids >"$T/laptop.imported.cues-ids"
grids "$ldb" "$lroot" >"$T/laptop.imported.grids"
sqlite3 "$ldb" 'PRAGMA integrity_check' >"$T/laptop.integrity.before"

# Three imported tracks go into decks: Mixxx loads them from the DB and writes them back at exit.
deck_tracks=("$T1" "$T4" "$T6")
mixxx_session laptop-open "$T/laptop/mixxx" "$lroot" no "${deck_tracks[@]/#/$lroot/}"
norm "$ldb" "$lroot" >"$T/laptop.after-mixxx.norm"
raw "$ldb" "$lroot" | sort >"$T/laptop.after-mixxx.raw"
cues "$ldb" "$lroot" ids >"$T/laptop.after-mixxx.cues-ids"
grids "$ldb" "$lroot" >"$T/laptop.after-mixxx.grids"

# ---------------------------------------------------------------- 5. checks
fails=0
check() { # check OK|FAIL message
  if [ "$1" = ok ]; then printf '  ok    %s\n' "$2"; else printf '  FAIL  %s\n' "$2"; fails=$((fails + 1)); fi
}
echo
echo "== values: desktop (after the DJ's edits) → laptop (import) → laptop (after Mixxx ran)"
# Every desktop value must be in the laptop after import, or be listed by import as not
# importable (then the laptop keeps its own value); and Mixxx must keep whatever the laptop holds.
pyfails=0
NORM_FIELDS=$NORM_FIELDS python3 - "$T" <<'PY' || pyfails=$?
import json, os, sys
T = sys.argv[1]
FIELDS = os.environ["NORM_FIELDS"].split()
def load(name):
    rows = {}
    with open(os.path.join(T, name), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            rows[parts[0]] = dict(zip(FIELDS, parts[1:]))
    return rows
desk, before, imported, after = (load(n) for n in (
    "desktop.norm", "laptop.before-import.norm", "laptop.imported.norm", "laptop.after-mixxx.norm"))
doc = json.load(open(os.path.join(T, "logs", "laptop-import.out"), encoding="utf-8"))
unwritable = {(p, u["field"]): u for u in doc.get("unwritable", []) for p in u["paths"]}
show = lambda v: repr(v) if v else "(none)"
fails = 0
for path in sorted(desk):
    print(f"  {path}")
    for f in FIELDS:
        want, old = desk[path][f], before.get(path, {}).get(f)
        got, aft = imported.get(path, {}).get(f), after.get(path, {}).get(f)
        u = unwritable.get((path, f))
        if u:
            expect, how = old, f"not importable ({u['reason']}): laptop keeps {show(old)}"
        else:
            expect, how = want, "imported"
        ok_import, ok_mixxx = got == expect, aft == got
        if want == old and not u and ok_import and ok_mixxx:
            continue  # unchanged on both machines and left alone
        status = "ok  " if ok_import and ok_mixxx else "FAIL"
        line = f"    {status}  {f}: {show(old)} → {show(want)}  {how}"
        if not ok_import:
            line += f", but the laptop has {show(got)}"
        line += ", kept by Mixxx" if ok_mixxx else f", Mixxx changed it to {show(aft)}"
        print(line)
        fails += not (ok_import and ok_mixxx)
for path in sorted(set(imported) - set(desk)):
    print(f"    FAIL  {path}: on the laptop only")
    fails += 1
# What import could not write stays incoming for the laptop's next sync.
with open(os.path.join(T, "unwritable.files"), "w") as f:
    f.write(str(len({p for (p, _) in unwritable})))
sys.exit(min(fails, 100))
PY
[ "$pyfails" -eq 0 ] && check ok "every desktop value imported (or reported not importable) and kept by Mixxx" ||
  check fail "$pyfails value(s) not as expected (above)"

echo "== raw columns the import touched, before vs after the Mixxx run"
changed=$(comm -3 "$T/laptop.imported.raw" "$T/laptop.after-mixxx.raw" || true)
# The deck-loaded tracks were written back whole by Mixxx, which re-serialises what it derives
# from bpm and key: a beat grid blob for the bpm column, a KeyMap blob and the key text in its
# notation for key_id. The values (bpm, key_id) are compared above; these re-encodings are
# reported, not failed. Every other column, and every column of the other tracks, must be equal.
split_changes() { # $1 = benign|serious; reads comm -3 lines ("<TAB>" prefix = after Mixxx)
  awk -F'\t' -v want="$1" -v a="$T1" -v b="$T4" -v c="$T6" '
    { side = "imported:   "; if ($1 == "") { side = "after Mixxx: "; $0 = substr($0, 2) }
      split($0, f, "\t"); k = (f[1] == a || f[1] == b || f[1] == c) && f[2] ~ /^(key|keys_version|keys_sub_version|hex\(keys\)|beats_version|beats_sub_version|hex\(beats\))$/
      if ((want == "benign") == k) print side $0 }'
}
benign=$(printf '%s\n' "$changed" | grep -v '^$' | split_changes benign || true)
serious=$(printf '%s\n' "$changed" | grep -v '^$' | split_changes serious || true)
if [ -n "$benign" ]; then printf '  info  Mixxx re-encoded derived data of a deck-loaded track:\n%s\n' "$(printf '%s\n' "$benign" | sed 's/^/          /')"; fi
if [ -z "$serious" ]; then check ok "no other column changed ($(wc -l <"$T/laptop.imported.raw") values compared)"; else
  printf '%s\n' "$serious" | sed 's/^/          /'; check fail "Mixxx rewrote imported columns"; fi
imported_n=$(comm -13 "$T/laptop.before-import.raw" "$T/laptop.imported.raw" | wc -l)
[ "$imported_n" -gt 0 ] && check ok "import changed $imported_n column values in the laptop DB" ||
  check fail "import changed nothing in the laptop DB"

echo "== cues: desktop → laptop (import) → laptop (after Mixxx ran)"
if cmp -s "$T/desktop.cues" "$T/laptop.imported.cues"; then
  check ok "the laptop holds the desktop's $(wc -l <"$T/desktop.cues") cue rows with identical columns (ids aside)"
else
  { diff "$T/desktop.cues" "$T/laptop.imported.cues" || true; } | sed 's/^/          /'; check fail "cue rows differ after import"
fi
# Mixxx adds cues of its own to a track it loads (a main cue and, from its silence analyser,
# intro/outro where there are none; the current loop as a type-4 row without a hot-cue number):
# reported, not failed. Every imported row must still be there, unchanged, with its id.
gone=$(sort "$T/laptop.imported.cues-ids" | comm -23 - <(sort "$T/laptop.after-mixxx.cues-ids") || true)
added=$(sort "$T/laptop.after-mixxx.cues-ids" | comm -13 <(sort "$T/laptop.imported.cues-ids") - || true)
[ -z "$added" ] || printf '  info  Mixxx added cues of its own to deck-loaded tracks:\n%s\n' "$(printf '%s\n' "$added" | sed 's/^/          /')"
if [ -z "$gone" ]; then
  check ok "Mixxx loaded the cued track into a deck and kept every imported cue row, ids included"
else
  printf '%s\n' "$gone" | sed 's/^/          /'; check fail "Mixxx changed or dropped imported cue rows"
fi
# What Mixxx added as a DJ's cue (main/intro/outro) is this laptop's edit: its next sync sends it.
auto_cue_files=$(printf '%s\n' "$added" | awk -F'\t' '$2 ~ /^[0-9]+ [267] /{print $1}' | sort -u | grep -c . || true)
cp=$(sqlite3 "$ldb" "SELECT quote(cuepoint) FROM library WHERE location=(SELECT id FROM track_locations WHERE location=$(sq "$lroot/$T1"))")
[ "$cp" = 22050 ] || [ "$cp" = 22050.0 ] && check ok "library.cuepoint = the main cue ($cp)" ||
  check fail "library.cuepoint is $cp, expected 22050"

echo "== beat grids: desktop → laptop (import) → laptop (after Mixxx ran)"
# Every grid the desktop holds must be in the laptop with identical columns (beats,
# beats_version, beats_sub_version, bpm_lock, bpm), the locked one on a deck-loaded track too,
# and Mixxx, loading and saving that track, must keep them byte for byte.
if cmp -s "$T/desktop.grids" "$T/laptop.imported.grids"; then
  check ok "the laptop holds the desktop's $(wc -l <"$T/desktop.grids") beat grids with identical columns (bpm and bpm_lock included)"
else
  { diff "$T/desktop.grids" "$T/laptop.imported.grids" || true; } | sed 's/^/          /'; check fail "beat grids differ after import"
fi
if cmp -s "$T/laptop.imported.grids" "$T/laptop.after-mixxx.grids"; then
  check ok "Mixxx loaded the locked grid's track into a deck and kept every grid column unchanged"
else
  { diff "$T/laptop.imported.grids" "$T/laptop.after-mixxx.grids" || true; } | sed 's/^/          /'; check fail "Mixxx changed imported beat grids"
fi

echo "== backup, database and log"
# import backs the database up before it writes: that snapshot must hold exactly the pre-import state.
backup=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("backup") or "")' "$T/logs/laptop-import.out")
if [ -n "$backup" ] && [ "$(sqlite3 "$backup" 'PRAGMA integrity_check')" = ok ] &&
  cmp -s <(raw "$backup" "$lroot" | sort) "$T/laptop.before-import.raw"; then
  check ok "backup ${backup#"$lap/"} holds the pre-import database"
else
  check fail "the backup import names (${backup:-none}) is not the intact pre-import database"
fi
ib=$(cat "$T/laptop.integrity.before") ia=$(sqlite3 "$ldb" 'PRAGMA integrity_check')
[ "$ib" = ok ] && [ "$ia" = ok ] && check ok "PRAGMA integrity_check: ok before and after Mixxx" ||
  check fail "integrity_check: before=$ib after=$ia"
errs=$(db_errors "$T/logs/laptop-open.log")
[ -z "$errs" ] && check ok "mixxx.log: no database Error/Failed lines" ||
  { printf '%s\n' "$errs" | head -n 20 | sed 's/^/          /'; check fail "mixxx.log has database errors"; }
grep -q 'Mixxx shutdown complete' "$T/logs/laptop-open.log" && check ok "Mixxx shut down cleanly" ||
  check fail "no clean shutdown"
for t in "${deck_tracks[@]}"; do
  if grep -aqF "Updating track in database $(sqlite3 "$ldb" "SELECT l.id FROM library l JOIN track_locations tl
      ON tl.id=l.location WHERE tl.location=$(sq "$lroot/$t")") QFileInfo($lroot/$t)" "$T/logs/laptop-open.log"; then
    check ok "Mixxx loaded $t into a deck and wrote its row back"
  else
    check fail "Mixxx did not load and save $t (the load path was not exercised)"
  fi
done

echo "== the laptop's next sync"
before_branch=$(git -C "$lap" rev-parse git-annex)
mc_run laptop-sync-after "$lap" "$ldb" "$lroot" sync --json
after_branch=$(git -C "$lap" rev-parse git-annex)
summary=$(python3 -c 'import json, sys
f = json.load(open(sys.argv[1]))["files"]
print(" ".join("%s=%s" % (k, f[k]) for k in ("to_write", "written", "conflicts", "incoming")))' "$T/logs/laptop-sync-after.out")
# What import could not write stays incoming; nothing may go out.
want_incoming=$(cat "$T/unwritable.files")
# Only the cues Mixxx made itself on deck-loaded tracks may go out (cue-main/-intro/-outro).
others=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(sum(1 for c in d["changes"] for f in c["fields"] if f not in ("cue-main", "cue-intro", "cue-outro")))' "$T/logs/laptop-sync-after.out")
want="to_write=$auto_cue_files written=$auto_cue_files conflicts=0 incoming=$want_incoming"
if [ "$summary" = "$want" ] && [ "$others" = 0 ] && { [ "$auto_cue_files" != 0 ] || [ "$before_branch" = "$after_branch" ]; }; then
  check ok "sync --json writes only the cues Mixxx made itself ($summary; incoming = the files import could not write)"
else
  check fail "sync after import: $summary (expected $want, $others other field changes), git-annex branch $before_branch -> $after_branch"
fi

echo
if [ $fails -eq 0 ]; then
  echo "PASS: import → real $mixxx_version → every imported value kept ($(wc -l <"$T/desktop.norm") tracks), $(($(date +%s) - t_start)) s"
else
  echo "FAIL: $fails check(s) failed (KEEP=1 keeps the temp dir with databases and logs)"
  exit 1
fi
