"""Instruction templates: the part of ``problem`` before the document.

Each template states the selection rule (from the domain), the exact keys, that values are strings
copied verbatim, and that only the JSON list is wanted. The published prompts put the instruction
first and the raw text after it; so do we. To add a template, append it here and bump
``text2json.build.GENERATOR_VERSION``. Templates contain no square brackets, so a model that echoes
the instruction does not trip the published scorer's one-bracket-pair rule by accident.
"""

from __future__ import annotations

import random

from text2json.domains import Attribute, Domain

INSTRUCTION_TEMPLATES = (
    "Below is {desc}. Extract every {noun} that {cond}. {excl} Return a JSON list with one object per "
    "{noun}. Each object has exactly three string fields: \"name\" ({name_desc}), {fields_prose}. Copy "
    "every value exactly as it is written in the text. Output only the JSON list, with no other text."
    "\n\n{doc}",

    "Task: from the document below ({desc}), list each {noun} that {cond}.\n{excl}\n"
    "Output format: a JSON array of objects with the keys \"name\", \"{k1}\" and \"{k2}\". All values "
    "are strings copied verbatim from the document.\n- name: {name_desc}\n- {k1}: {d1}\n- {k2}: {d2}\n"
    "Answer with the JSON array only.\n\nDocument:\n{doc}",

    "You are given {desc}. Find all {noun_plural} that {cond_plural}. {excl} For each one, report its "
    "name, {d1} and {d2} as a JSON list of objects with the keys \"name\", \"{k1}\" and \"{k2}\". "
    "Use string values exactly as they appear in the text; \"name\" is {name_desc}. Reply with the JSON "
    "list and nothing else.\n\n### Text\n\n{doc}",

    "Read the following text, which is {desc}, and build a JSON list of the {noun_plural} in it that "
    "{cond_plural}.\n\nRules:\n1. {excl}\n2. Every list element is an object with exactly the keys "
    "\"name\", \"{k1}\" and \"{k2}\", and every value is a string.\n3. \"name\" is {name_desc}; "
    "\"{k1}\" is {d1}; \"{k2}\" is {d2}.\n4. Copy values character for character from the text.\n"
    "5. Print only the JSON list.\n\n---\n{doc}",
)

# The domain's condition is written for "every <noun> that ..."; the plural templates need the verb
# in the plural. Only the leading verb changes.
_PLURAL_VERBS = {"is": "are", "was": "were", "holds": "hold", "currently holds": "currently hold"}


def _plural_condition(cond: str) -> str:
    for singular in sorted(_PLURAL_VERBS, key=len, reverse=True):
        if cond.startswith(singular + " "):
            return _PLURAL_VERBS[singular] + cond[len(singular):]
    raise ValueError(f"no plural form for condition {cond!r}; add its leading verb to _PLURAL_VERBS")


def instruction(rng: random.Random, domain: Domain, ctx: dict, attributes: tuple[Attribute, Attribute],
                desc: str) -> str:
    """The instruction for this sample: ``problem = instruction(...) + document``."""
    cond, excl, name_desc = domain.selection(ctx)
    a1, a2 = attributes
    template = INSTRUCTION_TEMPLATES[rng.randrange(len(INSTRUCTION_TEMPLATES))]
    if not template.endswith("{doc}"):
        raise ValueError("an instruction template must end with {doc}")
    return template[:-len("{doc}")].format(
        desc=desc, noun=domain.noun, noun_plural=domain.noun_plural, cond=cond,
        cond_plural=_plural_condition(cond), excl=excl, name_desc=name_desc, k1=a1.key, k2=a2.key,
        d1=a1.desc, d2=a2.desc, fields_prose=f"\"{a1.key}\" ({a1.desc}) and \"{a2.key}\" ({a2.desc})",
    )
