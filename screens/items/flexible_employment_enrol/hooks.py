"""灵活就业人员参保登记: who may enrol from which month, and what the platform receives.

- The kiosk does not take retroactive enrolment (补缴 needs a counter) and registers at most
  two months ahead; the month field's range already says so, the hook re-checks against
  the kiosk's date because the field range alone lets a form left open over midnight on the
  last day of a month through.
- Enrolment needs age 16 to the statutory retirement age. Retirement ages are rising
  gradually from 2025 (60→63 for men, 50/55→55/58 for women) and the platform has the
  exact rule; the kiosk only refuses the plain cases — under 16, or 63 and over — so that a
  citizen does not fill in the form for nothing.
"""

from kiosk.items.hooks import FieldError

_MIN_AGE = 16
_MAX_AGE = 63


def validate(answers, ctx):
    errors = []
    age = ctx.age
    if age is not None and age < _MIN_AGE:
        errors.append(FieldError("start_month", "items.flexible_employment_enrol.too_young", {"age": _MIN_AGE}))
    elif age is not None and age >= _MAX_AGE:
        errors.append(FieldError("start_month", "items.flexible_employment_enrol.retired"))
    year, month = (int(part) for part in answers["start_month"].split("-"))
    if (year, month) < (ctx.today.year, ctx.today.month):
        errors.append(FieldError("start_month", "items.flexible_employment_enrol.no_back_pay"))
    return errors


def build_application(answers, ctx):
    return {
        "start_month": answers["start_month"],
        "insurance": ["pension", "medical"] if answers["medical"] else ["pension"],
        "contribution_base_percent": int(answers["contribution_base"]),
        "contribution_base_rule": "provincial_average_wage",
        "phone": answers["phone"],
    }
