"""`kiosk doctor`: checks a real kiosk machine (devices, fonts, display, pcscd, clock, disk,
permissions, enrolment, printer queues, outbox, speech) and says, for each problem, what was
found and the command or config change that fixes it. One module per group of checks;
`runner.py` runs them concurrently, `main.py` is the command line."""

from kiosk.doctor.main import main
from kiosk.doctor.model import CheckResult, DoctorOptions, Status
from kiosk.doctor.runner import Report, run_checks

__all__ = ["CheckResult", "DoctorOptions", "Report", "Status", "main", "run_checks"]
