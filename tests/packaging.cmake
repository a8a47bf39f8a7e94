# Installation and packaging (issue 14).
tm_add_e2e(install_prefix install_prefix.sh install)
tm_add_e2e(man_lint man_lint.sh docs)
