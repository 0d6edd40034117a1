# Completes a command line the way bash does on <Tab>: source the generated script, find the
# function registered for music-commander, call it with COMP_* set, print COMPREPLY.
# Usage: bash --norc complete.bash SCRIPT LINE
source "$1"
spec=$(complete -p music-commander) || { echo "no completion registered for music-commander" >&2; exit 1; }
fn=${spec#*-F }; fn=${fn%% *}
read -r -a COMP_WORDS <<< "$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
prev=""; (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
