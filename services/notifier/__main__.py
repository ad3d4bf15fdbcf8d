"""python -m services.notifier [--check]"""

from services.notifier.config import NotifierSettings
from services.notifier.service import run
from shared.runner import run_service

if __name__ == "__main__":
    run_service("notifier", NotifierSettings, run)
