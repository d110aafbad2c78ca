# Completes a command line in an interactive zsh (through zsh/zpty) with the completion functions
# found in DIR first on fpath, and prints what the terminal showed: the line as completion left it.
# Usage: zsh -f zsh-complete.zsh DIR LINE EXPECTED (stops reading once EXPECTED shows, or after 20 s)
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D; echo READY"
zpty -r z line '*READY*' # the echo of the command
zpty -r z line '*READY*' # its output
zpty -w -n z "$2"$'\t'
out=''
for i in {1..200}; do
  while zpty -r -t z chunk; do out+=$chunk; done
  [[ $out == *"$3"* ]] && break
  sleep 0.1
done
print -r -- "$out"
zpty -d z
