#!/bin/sh
# gitaudit-hook: records this git hook in the gitaudit audit trail, then runs the hook it replaced.
# gitaudit-template: version 2 sha256 @TEMPLATE_SHA256@
# Installed by `gitaudit hooks install`; `gitaudit hooks uninstall` removes it and puts back the
# hook that was here before (kept next to it as <hook>.gitaudit-legacy). Do not edit: reinstall.
hook=@HOOK@ # which hook this is, whatever name a hook manager gives this file
mode=@MODE@ # record: record it, then run the chained hook; chain: only run the chained hook;
# gate: run the chained hook, and record the operation it refused if it does (Python only then)
python=@PYTHON@
root=@PACKAGE_ROOT@
case $0 in */*) here=${0%/*};; *) here=.;; esac
if [ -n "${GITAUDIT_HOOK_FALLBACK-}" ]; then unset GITAUDIT_HOOK_FALLBACK; python=; fi
gitdir() {  # $g: the git directory of the repository git runs this hook in (cwd, GIT_DIR)
    g=${GIT_DIR:-.git}
    [ -n "${GIT_DIR-}" ] || [ -e .git ] || g=.  # a bare repository: git runs hooks inside it
    if [ -f "$g" ]; then IFS= read -r g <"$g"; g=${g#gitdir: }; fi
}
found() {  # $chained: the hook git would have run without gitaudit; $as: the path it ran it as
    chained=$here/$hook.gitaudit-legacy as=$0 d=  # kept: it runs as the file we took over
    [ -f "$chained" ] && [ -x "$chained" ] && return
    chained=
    [ -f "$here/gitaudit-global" ] || return 1  # global: the previous hooks path, else the repo's
    while IFS= read -r l; do case $l in chain=?*) d=${l#chain=};; esac; done <"$here/gitaudit-global"
    case $d in '~') d=$HOME;; '~/'*) d=$HOME/${d#??};; esac
    if [ -z "$d" ]; then
        gitdir; d=${GIT_COMMON_DIR:-$g}
        if [ -z "${GIT_COMMON_DIR-}" ] && [ -f "$g/commondir" ]; then
            IFS= read -r d <"$g/commondir"; case $d in /*) ;; *) d=$g/$d;; esac
        fi
        d=$d/hooks
    fi
    [ "$d" -ef "$here" ] && return 1
    as=$d/$hook
    [ -f "$as" ] && [ -x "$as" ] && chained=$as
}
run() {  # run ($1 = exec: exec) the chained hook as git would: $0 = $as, git's arguments, stdin
    e=$1; shift
    if [ "$as" != "$chained" ] && IFS= read -r l <"$chained"; then
        case $l in '#!'*)  # a POSIX shell script is sourced, so that its $0 is $as
            i=${l#??}; i=${i# }; case $i in /usr/bin/env\ *|/bin/env\ *) i=${i#* };; esac
            case ${i%% *} in sh|bash|dash|ash|*/sh|*/bash|*/dash|*/ash)
                case ${i#"${i%% *}"} in *' '[!-]*) ;; *)
                    set -f  # $i: the interpreter and its flags, split into words
                    $e $i -c '__gitaudit_hook=$1; shift; . "$__gitaudit_hook"' "$as" "$chained" "$@"
                    return;;
                esac;;
            esac;;
        esac
    fi
    $e "$chained" "$@"
}
code='
import gc, os, sys
gc.disable()  # a short-lived process: no collections needed (reference counting frees)
sys.path.append(sys.argv.pop(1))
try:
    from gitaudit.capture.hookrun import run
except ImportError:  # gitaudit is gone: the script chains as if gitaudit had never been here
    if os.environ.get("GITAUDIT_HOOK_REFUSED"):
        sys.exit(0)  # the chained hook has run already
    os.environ["GITAUDIT_HOOK_FALLBACK"] = "1"
    os.execv("/bin/sh", ["/bin/sh", *sys.argv[2:]])
run(sys.argv[2:], sys.argv[1])
'
if [ "$mode" = gate ]; then
    found || exit 0
    { IFS= read -r l; IFS= read -r l; } <"$chained"  # a gitaudit hook records by itself
    case $l in '# gitaudit-hook'*) run exec "$@";; esac
    run '' "$@"; s=$?
    if [ "$s" != 0 ] && [ -x "$python" ]; then  # refused: record what it refused
        GITAUDIT_HOOK_REFUSED="$s $chained" "$python" -I -S -c "$code" "$root" "$hook" "$0" "$@"
    fi
    exit "$s"
fi
if [ "$mode" = chain ]; then
    found && run exec "$@"
    if [ "$hook" = push-to-checkout ]; then  # no such hook: do what git does without one
        git update-index -q --ignore-submodules --refresh
        git diff-files --quiet --ignore-submodules -- ||
            { echo "Working directory has unstaged changes" >&2; exit 1; }
        h=HEAD; git rev-parse -q --verify HEAD >/dev/null || h=$(git hash-object -t tree /dev/null)
        git diff-index --quiet --cached --ignore-submodules "$h" -- ||
            { echo "Working directory has staged changes" >&2; exit 1; }
        git read-tree -u -m "$h" "$1" ||
            { echo "Could not update working tree to new HEAD" >&2; exit 1; }
    fi
    exit 0
fi
if [ "$hook" = prepare-commit-msg ]; then  # records only while git is stopped on a conflict
    gitdir
    [ -e "$g/MERGE_HEAD" ] || [ -e "$g/CHERRY_PICK_HEAD" ] || [ -e "$g/REVERT_HEAD" ] || {
        [ -e "$g/REBASE_HEAD" ] && { [ -d "$g/rebase-merge" ] || [ -d "$g/rebase-apply" ]; }
    } || python=  # git leaves REBASE_HEAD behind once a rebase has ended
fi
if [ -x "$python" ]; then
    exec "$python" -I -S -c "$code" "$root" "$hook" "$0" "$@"
fi
# No interpreter to record with: behave as if gitaudit had never been installed.
found && run exec "$@"
exit 0
