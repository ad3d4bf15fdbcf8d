#!/usr/bin/env bash
# Secrets live in .env (exchange keys, dashboard password) and var/ (database, Redis data, keys):
# create both readable by this user only, and tighten them when they already exist.
set -euo pipefail
umask 077
if [ ! -f .env ]; then
    install -m 600 .env.example .env
    echo "created .env from .env.example (mode 600)"
elif [ -n "$(find .env -perm /077 2>/dev/null)" ]; then
    chmod 600 .env
    echo "made .env readable by its owner only (it holds secrets)"
fi
mkdir -p var
if [ -n "$(find var -maxdepth 0 -perm /077 2>/dev/null)" ]; then
    chmod 700 var
    echo "made var/ private to its owner (mode 700)"
fi
