# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_git_dgrid_global_optspecs
    string join \n h/help V/version
end

function __fish_git_dgrid_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_git_dgrid_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_git_dgrid_using_subcommand
    set -l cmd (__fish_git_dgrid_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "init" -d 'Lay out tasks/{queue,in_progress,completed,failed}/ and nodes/, commit, and install the pre-push hook'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "validate" -d 'Validate task files: the given files, those a revision range added or changed, or all of tasks/ and nodes/'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "submit" -d 'Submit tasks: from flags and a command, from JSON files, or JSON lines on stdin (-)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "claim" -d 'Claim queued tasks for a node (exit 0: claimed some, 1: nothing claimable, 2: error)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "compact" -d 'Replace main\'s history with one root commit holding its current tree (a force push, with a lease); the old history stays reachable from the branch dgrid-archive'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "archive" -d 'Move older results off main into the branch dgrid-archive (JSON-lines files per day and shard, an index and running totals), main and dgrid-archive moved in one atomic push with a lease on each; status, show and logs still find them'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "work" -d 'Run a worker: claim tasks, run them in Docker, push their results'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "status" -d 'Show the grid: nodes and their liveness, counts, queue, running tasks, recent results'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "show" -d 'Show a task: its state, spec, result and history (the commits that moved it)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "logs" -d 'Print a task\'s stdout and stderr as stored, with a note when they were cut'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "cancel" -d 'Cancel tasks: queued or running ones move to failed with status "cancelled" (a running container is stopped by its node)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "retry" -d 'Put failed tasks back in the queue, with their attempts reset'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "secrets" -d 'Tasks\' secrets: rotate them to the grid\'s current recipients'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "install-hooks" -d 'Install the pre-push hook that validates task files (honours core.hooksPath; keeps existing hooks)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "install-docs" -d 'Install the man pages and shell completions (then `git help dgrid` and `git dgrid --help` work)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "env" -d 'Print the effective configuration and where each value comes from (secrets redacted)'
complete -c git-dgrid -n "__fish_git_dgrid_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand init" -l bare -d 'Create a new grid remote instead: a bare repository at PATH with the layout on main' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand init" -l remote -d 'The remote to push to [default: git config dgrid.remote, else origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand init" -l push -d 'Push the layout commit to the remote'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand init" -l no-hooks -d 'Do not install the pre-push hook'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand init" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand init" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand validate" -l rev -d 'Validate the task files added or changed by the commits in this range (e.g. origin/main..HEAD)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand validate" -l allowed-signers -d 'Run only tasks signed by a key in this FILE (ssh-keygen\'s allowed signers format, namespace dgrid-task); validate reports unsigned, tampered and unknown-signer tasks; other tasks stay queued [git config dgrid.allowedSignersFile; default: signatures are not checked]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand validate" -l json -d 'Print one JSON object per problem ({"file", "field", "message"}), one per line'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand validate" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l image -d 'Container image for a task given by command' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l timeout -d 'Seconds the task may run' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l id -d 'Task id [default: a unique, time-sortable one]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l env -d 'Environment variable for the task (repeatable)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l priority -d 'Higher runs first' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l max-attempts -d 'How many times the task may be tried when nodes die [default: 3]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l label -d 'A label the running node must have (repeatable)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l cpus -d 'CPUs for the container' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l memory -d 'Memory for the container, e.g. 512m' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l network -d 'Network for the container: none or bridge' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l depends-on -d 'Run only after this task completed (repeatable)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l submitted-by -d 'Who submits [default: git config user.email]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l poll-interval -d 'Seconds between checks with --wait' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l signing-key -d 'With submit --sign: the SSH key to sign tasks with, a file (a .pub whose private key is in ssh-agent works) or key::LITERAL, as git\'s user.signingKey for gpg.format=ssh [git config user.signingKey; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l secret -d 'A secret for the task, encrypted to the grid\'s recipients (.dgrid/recipients): NAME=@FILE, NAME=- (stdin) or NAME (from this environment); never a value (repeatable)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l recipient -d 'Encrypt the secrets only to these names of .dgrid/recipients (repeatable) [default: all]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l trust-root -d 'Read .dgrid/recipients along the chain of signed changes from this commit (as workers trust the grid\'s signers)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l no-push -d 'Commit the tasks on a new local branch on top of the remote\'s main instead of pushing; prints the push command'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l wait -d 'Follow the tasks until they finish; exit 0 only if all succeeded'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l json -d 'Print one JSON object per task'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l sign -d 'Sign each task with an SSH key (ssh-keygen -Y sign, namespace dgrid-task), so that workers with --allowed-signers run it'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -l secrets-env -d 'Also give the secrets to the task as environment variables (set inside the container)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand submit" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l node-id -d 'The node that will run the tasks [git config dgrid.nodeId]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l max -d 'Claim at most this many tasks, in one push' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l lease -d 'Seconds until the claim expires unless renewed by a heartbeat' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l label -d 'A label this node has (repeatable); tasks that ask for labels need all of theirs here' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l allow-network -d 'Also claim tasks that ask for network access ("network": "bridge")'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -l json -d 'Print each claimed task as a JSON object, one per line'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -s v -l verbose -d 'Say on stderr how many pushes and lost races it took'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand claim" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand compact" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand compact" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand compact" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand compact" -l drop-history -d 'Keep no old history: dgrid-archive\'s tip is rewritten as a root commit with its tree'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand compact" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand compact" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -l keep -d 'Keep the newest N results on main (with --older-than: whichever keeps more) [default: from git config dgrid.retain, else 10000,7d]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -l older-than -d 'Keep the results younger than DURATION (e.g. 7d, 12h, 30m) on main' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand archive" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l node-id -d 'This node\'s id [git config dgrid.nodeId; default: host name + random suffix, kept in the state dir]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l label -d 'A label this node has (repeatable; DGRID_LABELS takes a comma-separated list) [git config dgrid.labels; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l slots -d 'Tasks run at the same time [git config dgrid.slots; default: 1]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l poll-interval -d 'Seconds between looks at the remote when idle, growing up to 4x while nothing changes [git config dgrid.pollInterval; default: 10]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l heartbeat-interval -d 'Seconds between heartbeat pushes when nothing else is pushed [git config dgrid.heartbeatInterval; default: 300]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l lease -d 'Seconds a claim lasts without a heartbeat [git config dgrid.lease; default: 3 heartbeat intervals]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l push-budget -d 'Pushes per minute for the whole grid, shared by all its writers (0: no limit) [git config dgrid.pushBudget; default: 6 on github.com and gitlab.com, else 0]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l prefetch -d 'Tasks claimed ahead at most, beyond the free slots, when a push budget spaces the pushes [git config dgrid.prefetch; default: 32]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l clock-skew -d 'Seconds of clock difference tolerated before another node\'s lease counts as expired [git config dgrid.clockSkew; default: 60]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l grace -d 'Seconds running tasks get to finish after SIGTERM/SIGINT before they are killed and released [git config dgrid.grace; default: 30]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l max-tasks -d 'Exit after running this many tasks' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l output-cap -d 'Bytes of each output stream kept in the result; the rest is counted and hashed [git config dgrid.outputCap; default: 65536]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l max-cpus -d 'CPUs a container may use at most [git config dgrid.maxCpus; default: 4]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l max-memory -d 'Memory a container may use at most, e.g. 4g [git config dgrid.maxMemory; default: 4g]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l pull -d 'When docker pulls images: missing or never [git config dgrid.pull; default: missing]' -r -f -a "missing\t''
never\t''"
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l default-image -d 'The image of a task file that names none (the Python implementation wrote none) [git config dgrid.defaultImage; default: python:3.11-alpine]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l allow-registry -d 'A registry HOST[:PORT] on this node\'s own network (loopback, private, link-local) that tasks may still pull from (repeatable; comma-separated lists too) [git config dgrid.allowRegistry; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l allow-image -d 'Run only tasks whose image matches one of these glob PATTERNs over the full reference, e.g. \'python:3.*\' or \'ghcr.io/acme/*@sha256:*\' (repeatable; comma-separated lists too); other tasks stay queued for other nodes [git config dgrid.allowImages; default: any image]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l max-task-timeout -d 'Run only tasks whose timeout is at most this many seconds; longer ones stay queued for other nodes [git config dgrid.maxTaskTimeout; default: the grid\'s dgrid.maxTimeout]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l max-tasks-per-hour -d 'Start at most N tasks in any hour (a sliding window); when it is full the worker claims nothing and waits [git config dgrid.maxTasksPerHour; default: no limit]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l allowed-signers -d 'Run only tasks signed by a key in this FILE (ssh-keygen\'s allowed signers format, namespace dgrid-task); validate reports unsigned, tampered and unknown-signer tasks; other tasks stay queued [git config dgrid.allowedSignersFile; default: signatures are not checked]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l trust-root -d 'With --trust-grid-signers: the commit whose .dgrid/allowed_signers the operator trusts as given (pinned) [git config dgrid.trustRoot; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l identity -d 'This node\'s key FILE for tasks\' secrets (an age identity or an ssh private key without a passphrase); tasks whose secrets it does not decrypt stay queued [git config dgrid.identity; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l container-user -d 'The USER[:GROUP] (names or numbers) that tasks run as in their containers; a task cannot choose [git config dgrid.containerUser; default: 65534:65534]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l runtime -d 'The container runtime for tasks, passed as docker run --runtime (e.g. runsc for gVisor, kata-runtime for Kata) [git config dgrid.runtime; default: docker\'s default]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l docker -d 'The docker command [git config dgrid.docker; default: docker]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l log-format -d 'Log lines as text, or as JSON objects for a supervisor [git config dgrid.logFormat; default: text]' -r -f -a "text\t''
json\t''"
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l once -d 'Claim at most one batch, run it, report, exit (for cron)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l until-empty -d 'Exit when the queue has nothing this node can run and its own tasks are reported'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l allow-network -d 'Let tasks that ask for "network": "bridge" have it [git config dgrid.allowNetwork; default: false]'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -l trust-grid-signers -d 'Also trust the grid\'s .dgrid/allowed_signers, along the chain of commits from dgrid.trustRoot in which each change to it is signed by a key of its previous version [git config dgrid.trustGridSigners; default: false]'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -s v -l verbose -d 'More detail in the log (each poll and push)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -s q -l quiet -d 'Only warnings and errors in the log'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand work" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l watch -d 'Redraw every SECS seconds until interrupted' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l html -d 'Write a static dashboard (index.html and status.json) into DIR' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l title -d 'The dashboard\'s title' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l now -d 'Pretend it is this time (RFC 3339), for reproducible output' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l ref -d 'Read this ref or commit instead of the remote\'s main (no fetch)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l json -d 'Print the status as JSON (a stable, documented object; see the README)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -l no-fetch -d 'Read what was fetched last, without fetching'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand status" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -l ref -d 'Read this ref or commit instead of the remote\'s main (no fetch)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -l json -d 'Print one JSON object'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -l no-fetch -d 'Read what was fetched last, without fetching'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand show" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l ref -d 'Read this ref or commit instead of the remote\'s main (no fetch)' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l stdout -d 'Only stdout'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l stderr -d 'Only stderr'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l raw -d 'Print the output byte for byte even on a terminal (otherwise control characters other than newlines and tabs are shown as \'?\' there)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -l no-fetch -d 'Read what was fetched last, without fetching'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand logs" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand cancel" -l reason -d 'Why, for the record' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand cancel" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand cancel" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand cancel" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand cancel" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand retry" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand retry" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand retry" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand retry" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand retry" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and not __fish_seen_subcommand_from rotate help" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and not __fish_seen_subcommand_from rotate help" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and not __fish_seen_subcommand_from rotate help" -f -a "rotate" -d 'Re-encrypt queued tasks\' secrets to the keys now in .dgrid/recipients'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and not __fish_seen_subcommand_from rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l identity -d 'This node\'s key FILE for tasks\' secrets (an age identity or an ssh private key without a passphrase); tasks whose secrets it does not decrypt stay queued [git config dgrid.identity; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l recipient -d 'Encrypt only to these names of .dgrid/recipients (repeatable) [default: all]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l signing-key -d 'With submit --sign: the SSH key to sign tasks with, a file (a .pub whose private key is in ssh-agent works) or key::LITERAL, as git\'s user.signingKey for gpg.format=ssh [git config user.signingKey; default: none]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l trust-root -d 'Read .dgrid/recipients along the chain of signed changes from this commit' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l remote -d 'The remote of this clone that holds the grid [git config dgrid.remote; default: origin]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l repo -d 'Work on this grid URL through a private cache clone instead of the current clone [git config dgrid.repoUrl; default: the current clone]' -r
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l state-dir -d 'Where cache clones and worker state live [git config dgrid.stateDir; default: $XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -l sign -d 'Re-sign the rotated tasks that were signed (with --signing-key or user.signingKey); without it they are left as they are'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from rotate" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Re-encrypt queued tasks\' secrets to the keys now in .dgrid/recipients'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand secrets; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand install-hooks" -l uninstall -d 'Remove git-dgrid\'s hook (and put back a hook it had kept aside)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand install-hooks" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand install-hooks" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand install-docs" -l prefix -d 'Install everything under this prefix [default: the man pages beside this binary, in PREFIX/share/man of its PREFIX/bin, where man finds them through PATH; the completions under ~/.local]' -r -F
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand install-docs" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand install-docs" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand env" -s h -l help -d 'Print help'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand env" -s V -l version -d 'Print version'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "init" -d 'Lay out tasks/{queue,in_progress,completed,failed}/ and nodes/, commit, and install the pre-push hook'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "validate" -d 'Validate task files: the given files, those a revision range added or changed, or all of tasks/ and nodes/'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "submit" -d 'Submit tasks: from flags and a command, from JSON files, or JSON lines on stdin (-)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "claim" -d 'Claim queued tasks for a node (exit 0: claimed some, 1: nothing claimable, 2: error)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "compact" -d 'Replace main\'s history with one root commit holding its current tree (a force push, with a lease); the old history stays reachable from the branch dgrid-archive'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "archive" -d 'Move older results off main into the branch dgrid-archive (JSON-lines files per day and shard, an index and running totals), main and dgrid-archive moved in one atomic push with a lease on each; status, show and logs still find them'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "work" -d 'Run a worker: claim tasks, run them in Docker, push their results'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "status" -d 'Show the grid: nodes and their liveness, counts, queue, running tasks, recent results'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "show" -d 'Show a task: its state, spec, result and history (the commits that moved it)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "logs" -d 'Print a task\'s stdout and stderr as stored, with a note when they were cut'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "cancel" -d 'Cancel tasks: queued or running ones move to failed with status "cancelled" (a running container is stopped by its node)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "retry" -d 'Put failed tasks back in the queue, with their attempts reset'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "secrets" -d 'Tasks\' secrets: rotate them to the grid\'s current recipients'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "install-hooks" -d 'Install the pre-push hook that validates task files (honours core.hooksPath; keeps existing hooks)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "install-docs" -d 'Install the man pages and shell completions (then `git help dgrid` and `git dgrid --help` work)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "env" -d 'Print the effective configuration and where each value comes from (secrets redacted)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and not __fish_seen_subcommand_from init validate submit claim compact archive work status show logs cancel retry secrets install-hooks install-docs env help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c git-dgrid -n "__fish_git_dgrid_using_subcommand help; and __fish_seen_subcommand_from secrets" -f -a "rotate" -d 'Re-encrypt queued tasks\' secrets to the keys now in .dgrid/recipients'
