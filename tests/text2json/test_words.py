"""The hand-made word lists keep the properties the generator relies on."""

from text2json import words as W


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _strings(v)


def test_no_brackets_quotes_or_backslashes():
    lists = {k: v for k, v in vars(W).items() if k.isupper()}
    for name, value in lists.items():
        for s in _strings(value):
            assert not set(s) & set('[]"\\'), f"{name}: {s!r}"


def test_lists_have_no_duplicates():
    for name in ("FIRST_NAMES", "SURNAMES", "CITIES", "BRANDS", "SERIES", "SERIES_CODES", "ORG_ROOTS",
                 "TITLE_NOUNS", "STUDIOS", "GENRES", "SPECIALTIES"):
        values = getattr(W, name)
        assert len(set(values)) == len(values), name
