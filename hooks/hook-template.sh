#!/bin/sh
# gitaudit-hook: records this git hook in the gitaudit audit trail, then runs the hook it replaced.
# gitaudit-template: version 1 sha256 @TEMPLATE_SHA256@
# Installed by `gitaudit hooks install`; `gitaudit hooks uninstall` removes it and puts back the
# hook that was here before (kept next to it as <name>.gitaudit-legacy). Do not edit: reinstall.
python=@PYTHON@
root=@PACKAGE_ROOT@
case $0 in */prepare-commit-msg)  # records only while git is stopped on a conflict: no Python else
    g=${GIT_DIR:-.git}; if [ -f "$g" ]; then read -r g <"$g"; g=${g#gitdir: }; fi
    [ -e "$g/MERGE_HEAD" ] || [ -e "$g/CHERRY_PICK_HEAD" ] || [ -e "$g/REVERT_HEAD" ] || {
        [ -e "$g/REBASE_HEAD" ] && { [ -d "$g/rebase-merge" ] || [ -d "$g/rebase-apply" ]; }
    } || { keep=$python; python=; }  # git leaves REBASE_HEAD behind once a rebase has ended
    if [ -z "$python" ] && [ -e "${0%/*}/gitaudit-global" ]; then  # Python only to chain a hook
        c=$g; if [ -f "$g/commondir" ]; then read -r c <"$g/commondir"; case $c in /*) ;; *) c=$g/$c;; esac; fi
        [ -e "$c/hooks/prepare-commit-msg" ] && python=$keep
        while IFS= read -r line; do case $line in chain=?*) python=$keep;; esac; done <"${0%/*}/gitaudit-global"
    fi
esac
if [ -x "$python" ]; then
    exec "$python" -I -S -c '
import gc, sys
gc.disable()  # a short-lived process: no collections needed (reference counting frees)
sys.path.append(sys.argv.pop(1))
try:
    from gitaudit.capture.hookrun import run
except ImportError:  # gitaudit is gone: run the kept hook as if gitaudit had never been here
    import os
    legacy = sys.argv[1] + ".gitaudit-legacy"
    if os.access(legacy, os.X_OK):
        os.execv(legacy, [legacy, *sys.argv[2:]])
    sys.exit(0)
run(sys.argv[1:])
' "$root" "$0" "$@"
fi
# gitaudit's interpreter is gone: behave as if gitaudit had never been installed.
if [ -x "$0.gitaudit-legacy" ]; then
    exec "$0.gitaudit-legacy" "$@"
fi
exit 0
