# Completes a command line the way zsh does on <Tab>: an interactive zsh in a pseudo-terminal
# (zpty) loads compinit and the generated script (ZDOTDIR/.zshrc), receives LINE and a Tab, and
# its compadd wrapper records every candidate the completion function offers.
# Usage: zsh -f complete.zsh ZDOTDIR SCRIPT OUTFILE LINE
zmodload zsh/zpty || { print -u2 "zsh/zpty is not available"; exit 3 }
export ZDOTDIR=$1 MC_SCRIPT=$2 MC_OUT=$3
: > $MC_OUT
zpty z zsh -i
zpty -w -n z "$4"$'\t'
for i in {1..150}; do
  grep -q '<done>' $MC_OUT && break
  sleep 0.1
done
zpty -d z
grep -q '<done>' $MC_OUT || { print -u2 "zsh did not finish completing within 15 s"; exit 4 }
grep -v '<done>' $MC_OUT
