"""电子证照打印: offer only the certificates the 苏服码 authorised, and refuse any other.

The platform's authorisation lists the certificate types this visit may read; asking for one
outside it would be refused by the platform anyway, after the citizen waited. A 苏服码 whose
authorisation lists no types grants none.
"""

from kiosk.items.hooks import FieldError


def field_options(field_id, values, ctx):
    if field_id != "licence" or ctx.identity is None:
        return list(values)
    authorised = set(ctx.identity.authorised_certificates)
    return [value for value in values if value in authorised]


def validate(answers, ctx):
    authorised = set(ctx.identity.authorised_certificates) if ctx.identity else set()
    if answers.get("licence") not in authorised:
        return [FieldError("licence", "items.e_licence_print.not_authorised")]
    return []
