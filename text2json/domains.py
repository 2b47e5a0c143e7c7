"""The four domains: what an entity is, its attributes, the selection rule, and its near-duplicates.

A domain supplies data and phrasing; :mod:`text2json.prose` turns entities into text and
:mod:`text2json.build` assembles samples. Per sample a domain draws a context (category, formats,
year window...), a pool of attributes (two are asked for), gold entities that satisfy the selection
rule, and near-duplicate distractors that do not:

=============  ==========================  ==============================================
domain         selection rule               near-duplicate distractor
=============  ==========================  ==============================================
products       currently available          same brand and series, another model number
medical        holds an active license      same surname, another first name
organizations  still operating              same root and sector, another legal suffix
movies         released inside a year window  same title, a year outside the window
=============  ==========================  ==============================================

To add a domain: subclass :class:`Domain`, fill the hooks, register it in :data:`DOMAINS`, and bump
``text2json.build.GENERATOR_VERSION``.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

from text2json import words as W

INCLUDE = "include"


@dataclass(frozen=True)
class Attribute:
    """One string attribute an instruction can ask for."""

    key: str  # JSON key in the answer
    label: str  # table header and card label, "Price"
    desc: str  # what the instruction says the value is
    vps: tuple[str, ...]  # verb phrases about the entity, "is priced at {v}"
    nps: tuple[str, ...]  # noun phrases, "a list price of {v}"
    make: Callable[[random.Random, "EntitySeed"], str]


@dataclass(frozen=True)
class EntitySeed:
    """An entity before its attribute values exist (values may depend on the name and facts)."""

    name: str
    gold: bool
    status: str  # INCLUDE, or the reason the selection rule excludes it
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Entity:
    name: str
    gold: bool
    status: str
    facts: dict
    values: dict  # attribute key -> value, in the order the instruction lists the keys


@dataclass(frozen=True)
class StatusText:
    """How the text states whether the selection rule includes an entity."""

    vp: str  # "was discontinued in 2021"
    sentence: str  # a full sentence with "{R}" where the reference goes
    label: str  # table cell, "Discontinued"


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _pick(rng: random.Random, options):
    return options[rng.randrange(len(options))]


def _person_name(rng: random.Random) -> str:
    return f"{_pick(rng, W.FIRST_NAMES)} {_pick(rng, W.SURNAMES)}"


class Domain:
    """Hooks a domain fills. Every method draws only from the ``rng`` it is given."""

    name: str
    noun: str  # "product"
    noun_plural: str
    is_person: bool = False
    name_headers: tuple[str, ...]  # table header for the name column
    status_headers: tuple[str, ...]
    status_key: str = "status"  # how bullets and cards label the status cell

    def new_context(self, rng: random.Random) -> dict:
        raise NotImplementedError

    def attribute_pool(self, ctx: dict) -> tuple[Attribute, ...]:
        raise NotImplementedError

    def gold_seed(self, rng: random.Random, ctx: dict) -> EntitySeed:
        raise NotImplementedError

    def near_duplicate(self, rng: random.Random, ctx: dict, twin: EntitySeed) -> EntitySeed:
        raise NotImplementedError

    def refs(self, entity: Entity) -> tuple[str, ...]:
        """Ways the text refers to the entity; each contains the name verbatim."""
        return (entity.name,)

    def status_text(self, rng: random.Random, entity: Entity, ctx: dict) -> StatusText:
        raise NotImplementedError

    def selection(self, ctx: dict) -> tuple[str, str, str]:
        """(condition after "every <noun> that", exclusion sentence, description of "name")."""
        raise NotImplementedError

    def title(self, rng: random.Random, ctx: dict) -> tuple[str, str]:
        """(document title, short description used by the instruction)."""
        raise NotImplementedError


# --- products --------------------------------------------------------------------------------------

def _num_attr(key, label, desc, vps, nps, lo, hi, fmt, step=1):
    def make(rng: random.Random, seed: EntitySeed) -> str:
        return fmt(lo + step * rng.randrange((hi - lo) // step + 1))
    return Attribute(key, label, desc, vps, nps, make)


def _choice_attr(key, label, desc, vps, nps, options):
    return Attribute(key, label, desc, vps, nps, lambda rng, seed: _pick(rng, options))


_BATTERY_VPS = ("lasts {v} on a full charge", "offers a battery life of {v}", "runs for {v} between charges")
_BATTERY_NPS = ("a rated battery life of {v}", "battery life of {v}")

_CATEGORIES = {
    "laptops": (
        _num_attr("battery_life", "Battery life", "the rated battery life", _BATTERY_VPS, _BATTERY_NPS,
                  7, 24, lambda n: f"{n} hours"),
        _num_attr("screen_size", "Screen size", "the screen size", ("has a {v} display", "comes with a {v} screen"),
                  ("a {v} display",), 133, 173, lambda n: f"{n / 10:.1f} in", step=2),
        _choice_attr("storage", "Storage", "the built-in storage", ("ships with {v} of storage",
                     "includes {v} of solid-state storage"), ("{v} of storage",),
                     ("256 GB", "512 GB", "1 TB", "2 TB", "4 TB")),
    ),
    "espresso machines": (
        _num_attr("power", "Power", "the rated power", ("draws {v}", "is rated at {v}"), ("a rated power of {v}",),
                  1000, 1750, lambda n: f"{_fmt_int(n)} W", step=50),
        _num_attr("capacity", "Tank capacity", "the water tank capacity", ("holds {v} of water", "has a {v} water tank"),
                  ("a {v} water tank",), 10, 30, lambda n: f"{n / 10:.1f} L"),
        _choice_attr("pump_pressure", "Pump pressure", "the pump pressure", ("builds {v} of pump pressure",
                     "uses a {v} pump"), ("a {v} pump",), ("9 bar", "12 bar", "15 bar", "19 bar", "20 bar")),
    ),
    "cordless drills": (
        _choice_attr("voltage", "Voltage", "the battery voltage", ("runs on a {v} battery", "uses a {v} platform"),
                     ("a {v} battery platform",), ("10.8 V", "12 V", "18 V", "20 V", "36 V")),
        _num_attr("torque", "Torque", "the maximum torque", ("delivers up to {v} of torque",
                  "produces a maximum torque of {v}"), ("a maximum torque of {v}",), 30, 140, lambda n: f"{n} Nm",
                  step=5),
        _choice_attr("battery_capacity", "Battery pack", "the battery capacity", ("comes with a {v} battery pack",),
                     ("a {v} battery pack",), ("1.5 Ah", "2.0 Ah", "3.0 Ah", "4.0 Ah", "5.0 Ah", "6.0 Ah")),
    ),
    "headphones": (
        _num_attr("battery_life", "Battery life", "the rated battery life", _BATTERY_VPS, _BATTERY_NPS,
                  18, 70, lambda n: f"{n} hours"),
        _num_attr("driver_size", "Driver size", "the driver size", ("uses {v} drivers", "is built around {v} drivers"),
                  ("{v} drivers",), 30, 55, lambda n: f"{n} mm"),
    ),
    "monitors": (
        _num_attr("screen_size", "Screen size", "the screen size", ("has a {v} panel", "measures {v} diagonally"),
                  ("a {v} panel",), 22, 49, lambda n: f"{n} in"),
        _choice_attr("refresh_rate", "Refresh rate", "the refresh rate", ("refreshes at {v}",
                     "supports a refresh rate of {v}"), ("a refresh rate of {v}",),
                     ("60 Hz", "75 Hz", "100 Hz", "120 Hz", "144 Hz", "165 Hz", "240 Hz", "360 Hz")),
        _choice_attr("resolution", "Resolution", "the native resolution", ("has a native resolution of {v}",
                     "displays {v} pixels"), ("a native resolution of {v}",),
                     ("1920 x 1080", "2560 x 1440", "3440 x 1440", "3840 x 2160", "5120 x 1440", "2560 x 1080")),
    ),
    "e-bikes": (
        _num_attr("range", "Range", "the rated range", ("covers up to {v} per charge", "has a rated range of {v}"),
                  ("a rated range of {v}",), 40, 180, lambda n: f"{n} km", step=5),
        _choice_attr("motor_power", "Motor power", "the motor power", ("uses a {v} motor", "is driven by a {v} motor"),
                     ("a {v} motor",), ("250 W", "350 W", "500 W", "750 W", "1,000 W")),
        _num_attr("battery_capacity", "Battery capacity", "the battery capacity", ("carries a {v} battery",),
                  ("a {v} battery",), 300, 900, lambda n: f"{n} Wh", step=10),
    ),
    "blenders": (
        _num_attr("power", "Power", "the motor power", ("has a {v} motor", "is rated at {v}"), ("a {v} motor",),
                  500, 2200, lambda n: f"{_fmt_int(n)} W", step=50),
        _num_attr("capacity", "Jar capacity", "the jar capacity", ("comes with a {v} jar", "holds {v}"), ("a {v} jar",),
                  6, 25, lambda n: f"{n / 10:.1f} L"),
    ),
    "routers": (
        _choice_attr("max_speed", "Max speed", "the maximum combined speed", ("reaches {v} combined",
                     "is rated for up to {v}"), ("a combined speed of {v}",),
                     ("1.2 Gbps", "1.8 Gbps", "3.0 Gbps", "5.4 Gbps", "6.6 Gbps", "9.6 Gbps", "19 Gbps")),
        _num_attr("coverage", "Coverage", "the advertised coverage", ("covers up to {v}", "is advertised to cover {v}"),
                  ("coverage of {v}",), 1500, 7500, lambda n: f"{_fmt_int(n)} sq ft", step=250),
    ),
    "cameras": (
        _num_attr("sensor", "Sensor resolution", "the sensor resolution", ("has a {v} sensor", "captures images at {v}"),
                  ("a {v} sensor",), 201, 610, lambda n: f"{n / 10:.1f} MP", step=3),
        _num_attr("battery_life", "Battery rating", "the battery rating", ("is rated for {v} per charge",),
                  ("a rating of {v} per charge",), 250, 900, lambda n: f"{n} shots", step=10),
    ),
    "air purifiers": (
        _num_attr("cadr", "CADR", "the clean air delivery rate", ("has a clean air delivery rate of {v}",
                  "moves {v} of filtered air"), ("a clean air delivery rate of {v}",), 150, 650,
                  lambda n: f"{n} m3/h", step=10),
        _num_attr("coverage", "Room size", "the recommended room size", ("suits rooms of up to {v}",
                  "is recommended for rooms up to {v}"), ("a recommended room size of {v}",), 15, 95,
                  lambda n: f"{n} sq m"),
    ),
    "robot vacuums": (
        _num_attr("suction", "Suction", "the suction power", ("pulls {v} of suction", "offers {v} of suction"),
                  ("{v} of suction",), 1500, 10000, lambda n: f"{_fmt_int(n)} Pa", step=500),
        _num_attr("runtime", "Runtime", "the runtime per charge", ("cleans for {v} per charge",
                  "runs for {v} before docking"), ("a runtime of {v}",), 60, 260, lambda n: f"{n} min", step=10),
    ),
    "smartwatches": (
        _num_attr("battery_life", "Battery life", "the rated battery life", _BATTERY_VPS, _BATTERY_NPS,
                  1, 21, lambda n: f"{n} days"),
        _choice_attr("water_resistance", "Water rating", "the water resistance rating", ("is water resistant to {v}",
                     "carries a {v} water rating"), ("a {v} water rating",), ("3 ATM", "5 ATM", "10 ATM", "IP68")),
    ),
}

_PRICE_RANGES = {
    "laptops": (499, 3499), "espresso machines": (149, 2499), "cordless drills": (59, 499),
    "headphones": (39, 599), "monitors": (129, 1899), "e-bikes": (899, 6999), "blenders": (29, 699),
    "routers": (49, 699), "cameras": (399, 4999), "air purifiers": (79, 899), "robot vacuums": (149, 1499),
    "smartwatches": (79, 899),
}
_WEIGHT_RANGES_KG = {
    "laptops": (0.9, 3.2), "espresso machines": (3.0, 14.0), "cordless drills": (0.9, 2.8),
    "headphones": (0.15, 0.4), "monitors": (3.0, 12.0), "e-bikes": (17.0, 32.0), "blenders": (1.5, 6.0),
    "routers": (0.3, 2.0), "cameras": (0.35, 1.6), "air purifiers": (3.0, 12.0), "robot vacuums": (2.5, 5.5),
    "smartwatches": (0.03, 0.08),
}

class Products(Domain):
    name = "products"
    noun, noun_plural = "product", "products"
    name_headers = ("Product", "Model", "Name")
    status_headers = ("Status", "Availability")

    def new_context(self, rng):
        category = _pick(rng, sorted(_CATEGORIES))
        symbol, code = _pick(rng, (("$", "USD"), ("€", "EUR"), ("£", "GBP")))
        return {
            "category": category,
            "currency": symbol,
            "price_style": rng.randrange(3),
            "weight_unit": _pick(rng, ("kg", "kg", "lb")),
            "year": 2016 + rng.randrange(9),
            "retailer": f"{_pick(rng, W.ORG_ROOTS)} {_pick(rng, ('Outfitters', 'Electronics', 'Home', 'Supply'))}",
        }

    def attribute_pool(self, ctx):
        category = ctx["category"]
        lo, hi = _PRICE_RANGES[category]
        symbol, style = ctx["currency"], ctx["price_style"]

        def price(rng, seed):
            n = (lo + rng.randrange(hi - lo + 1)) // 10 * 10 + 9
            return (f"{symbol}{n:,}", f"{symbol}{n:,}.00", f"{symbol}{n - 1:,}.99")[style]

        wlo, whi = _WEIGHT_RANGES_KG[category]

        def weight(rng, seed):
            kg = wlo + (whi - wlo) * rng.random()
            if ctx["weight_unit"] == "lb":
                return f"{kg * 2.2046:.1f} lb"
            return f"{kg:.2f} kg" if kg < 10 else f"{kg:.1f} kg"

        def release(rng, seed):
            return f"{_pick(rng, W.MONTHS)} {seed.facts['release_year']}"

        def sku(rng, seed):
            return f"{_pick(rng, W.SERIES_CODES)}-{rng.randrange(10000, 100000)}-{_pick(rng, 'ABCDEFGHJK')}"

        common = (
            Attribute("price", "Price", "the list price with its currency symbol",
                      ("is priced at {v}", "sells for {v}", "retails at {v}", "carries a list price of {v}",
                       "costs {v}"), ("a list price of {v}", "a price tag of {v}"), price),
            Attribute("weight", "Weight", "the weight with its unit", ("weighs {v}", "tips the scales at {v}",
                      "has a listed weight of {v}"), ("a weight of {v}",), weight),
            _num_attr("warranty", "Warranty", "the warranty period", ("comes with a warranty of {v}",
                      "is covered by a warranty of {v}"), ("a warranty period of {v}",), 1, 5,
                      lambda n: f"{n} year" + ("s" if n > 1 else "")),
            _choice_attr("color", "Color", "the color name", ("comes in {v}", "is finished in {v}"),
                         ("a {v} finish",), W.COLORS),
            Attribute("sku", "SKU", "the stock-keeping unit code", ("is stocked under SKU {v}",
                      "carries the SKU {v}"), ("SKU {v}",), sku),
            Attribute("release_date", "Release date", "the month and year of release", ("was first released in {v}",
                      "reached stores in {v}"), ("a release date of {v}",), release),
        )
        return common + _CATEGORIES[category]

    def gold_seed(self, rng, ctx):
        brand = _pick(rng, W.BRANDS)
        if rng.random() < 0.5:
            series, sep = _pick(rng, W.SERIES), " "
        else:
            series, sep = _pick(rng, W.SERIES_CODES), "-"
        digits = _pick(rng, (3, 3, 4, 4, 2))
        number = rng.randrange(10 ** (digits - 1), 10 ** digits)
        name = f"{brand} {series}{sep}{number}"
        facts = {"brand": brand, "series": series, "sep": sep, "digits": digits,
                 "release_year": ctx["year"] - rng.randrange(3)}
        return EntitySeed(name, True, INCLUDE, facts)

    def near_duplicate(self, rng, ctx, twin):
        f = twin.facts
        number = rng.randrange(10 ** (f["digits"] - 1), 10 ** f["digits"])
        name = f"{f['brand']} {f['series']}{f['sep']}{number}"
        status = _pick(rng, ("discontinued", "discontinued", "announced", "recalled"))
        release_year = ctx["year"] - 2 - rng.randrange(6) if status != "announced" else ctx["year"] + 1
        return EntitySeed(name, False, status, {**f, "release_year": release_year,
                                                "status_year": ctx["year"] - rng.randrange(3)})

    def refs(self, entity):
        return (f"the {entity.name}", entity.name)

    def status_text(self, rng, entity, ctx):
        y = entity.facts.get("status_year", ctx["year"])
        options = {
            INCLUDE: (("is currently available", "is in stock with all authorised dealers", "is on sale now",
                       "remains in active production", "ships within two business days",
                       "is available to order in every region"),
                      ("{R} is available to order today.", "Dealers report healthy stock of {R}.",
                       "{R} is on sale now at the usual retailers.", "Orders for {R} are shipping normally."),
                      ("Available", "In stock", "On sale")),
            "discontinued": ((f"was discontinued in {y}", "is no longer produced", f"was withdrawn from sale in {y}",
                              "has reached end of life and is no longer sold"),
                             ("{R} has been discontinued.", f"Production of {{R}} ended in {y}.",
                              f"{{R}} is no longer sold; the last units were cleared in {y}."),
                             ("Discontinued", "End of life")),
            "announced": (("has been announced but is not yet on sale", "is slated for release next year",
                           "is still in pre-production"),
                          ("{R} was announced recently but cannot be ordered yet.",
                           "{R} will not reach stores until next year."),
                          ("Announced", "Pre-release")),
            "recalled": (("was recalled and pulled from shelves", "is under a safety recall and cannot be sold"),
                         ("{R} was recalled over a safety issue and is not on sale.",
                          f"A safety recall in {y} took {{R}} off the shelves."),
                         ("Recalled",)),
        }
        vps, sentences, labels = options[entity.status]
        return StatusText(_pick(rng, vps), _pick(rng, sentences), _pick(rng, labels))

    def selection(self, ctx):
        return ("is currently available for purchase",
                "Leave out products that are discontinued, recalled, or announced but not yet on sale.",
                "the full product name, brand and model number, as written in the text")

    def title(self, rng, ctx):
        cat, year = ctx["category"], ctx["year"]
        cap = cat[0].upper() + cat[1:]
        options = (
            (f"{ctx['retailer']} {_pick(rng, ('Spring', 'Autumn', 'Winter', 'Summer'))} Catalogue: {cap}",
             f"a retailer's catalogue of {cat}"),
            (f"{cap} Buyer's Guide, {year} Edition", f"a buyer's guide to {cat}"),
            (f"Quarterly Lineup Review: {cap}", f"an internal review of the {cat} lineup"),
            (f"Trade Show Report: {cap} ({year})", f"a trade show report on {cat}"),
            (f"{ctx['retailer']}: Inventory Audit of {cap}", f"an inventory audit of {cat}"),
        )
        return _pick(rng, options)


# --- medical ---------------------------------------------------------------------------------------

class Medical(Domain):
    name = "medical"
    noun, noun_plural = "practitioner", "practitioners"
    is_person = True
    name_headers = ("Practitioner", "Name", "Clinician")
    status_headers = ("License status", "Status")

    def new_context(self, rng):
        return {
            "region": f"{_pick(rng, W.FEATURES)} County",
            "year": 2015 + rng.randrange(10),
            "license_style": rng.randrange(3),
            "phone_style": rng.randrange(3),
            "email_domains": tuple(f"{_ascii_slug(_pick(rng, W.FEATURES))}{_pick(rng, ('health', 'med', 'clinic'))}"
                                   f"{_pick(rng, ('.org', '.com', '.net'))}" for _ in range(3)),
            "network": f"{_pick(rng, W.FEATURES)} Health Network",
        }

    def attribute_pool(self, ctx):
        def hospital(rng, seed):
            return _pick(rng, W.HOSPITAL_PATTERNS).format(city=_pick(rng, W.CITIES), saint=_pick(rng, W.SAINTS),
                                                          surname=_pick(rng, W.SURNAMES).replace("’", ""),
                                                          feature=_pick(rng, W.FEATURES))

        def license_number(rng, seed):
            style = ctx["license_style"]
            if style == 0:
                return f"{seed.facts['credential'].split('-')[0]}-{rng.randrange(100000, 1000000)}"
            if style == 1:
                return f"LIC {rng.randrange(1000, 10000)}-{rng.randrange(1000, 10000)}"
            return f"{_pick(rng, 'ABCDEGHKMNPRT')}{rng.randrange(10000, 100000)}"

        def phone(rng, seed):
            a, b, c = rng.randrange(200, 1000), rng.randrange(200, 1000), rng.randrange(10000)
            return (f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"+1 {a} {b} {c:04d}")[ctx["phone_style"]]

        def email(rng, seed):
            first, last = seed.facts["first"], seed.facts["last"]
            local = (f"{_ascii_slug(first)[0]}.{_ascii_slug(last)}", f"{_ascii_slug(first)}.{_ascii_slug(last)}",
                     f"{_ascii_slug(last)}{rng.randrange(10, 100)}")[rng.randrange(3)]
            return f"{local}@{_pick(rng, ctx['email_domains'])}"

        return (
            _choice_attr("specialty", "Specialty", "the medical specialty", ("specializes in {v}", "practices {v}",
                         "works in {v}"), ("a specialty in {v}", "board certification in {v}"), W.SPECIALTIES),
            Attribute("hospital", "Affiliation", "the hospital or clinic affiliation", ("is affiliated with {v}",
                      "sees patients at {v}", "holds admitting privileges at {v}"), ("an affiliation with {v}",),
                      hospital),
            Attribute("license_number", "License no.", "the license number", ("holds license number {v}",
                      "is registered under license {v}"), ("license number {v}",), license_number),
            Attribute("phone", "Phone", "the office phone number", ("can be reached at {v}",
                      "lists {v} as the office phone"), ("an office phone of {v}",), phone),
            Attribute("email", "Email", "the contact email address", ("can be contacted at {v}",
                      "uses the address {v}"), ("the contact address {v}",), email),
            _num_attr("npi", "NPI", "the national provider identifier", ("is listed under NPI {v}",
                      "carries the provider number {v}"), ("provider number {v}",), 1000000000, 1999999999, str),
            _choice_attr("city", "Office city", "the city of the main office", ("keeps an office in {v}",
                         "has a practice in {v}"), ("a main office in {v}",), W.CITIES),
        )

    def gold_seed(self, rng, ctx):
        first, last = _pick(rng, W.FIRST_NAMES), _pick(rng, W.SURNAMES)
        return EntitySeed(f"{first} {last}", True, INCLUDE,
                          {"first": first, "last": last, "credential": _pick(rng, W.CREDENTIALS)})

    def near_duplicate(self, rng, ctx, twin):
        first = _pick(rng, W.FIRST_NAMES)
        last = twin.facts["last"]
        status = _pick(rng, ("retired", "lapsed", "lapsed", "suspended"))
        return EntitySeed(f"{first} {last}", False, status,
                          {"first": first, "last": last, "credential": _pick(rng, W.CREDENTIALS),
                           "status_year": ctx["year"] - rng.randrange(1, 6)})

    def refs(self, entity):
        cred = entity.facts["credential"]
        if cred in ("MD", "DO"):
            return (f"Dr. {entity.name}", f"{entity.name} ({cred})", entity.name)
        return (f"{entity.name} ({cred})", entity.name)

    def status_text(self, rng, entity, ctx):
        y = entity.facts.get("status_year", ctx["year"])
        options = {
            INCLUDE: (("holds an active license", "is in active practice", "is currently accepting patients",
                       "renewed their license this year", "practices full time"),
                      ("{R} holds an active license.", "The license held by {R} is active and in good standing.",
                       "{R} is currently seeing patients."),
                      ("Active", "Active, in good standing", "Licensed")),
            "retired": ((f"retired from practice in {y}", "is retired and no longer sees patients"),
                        (f"{{R}} retired in {y}.", "{R} has retired from clinical work."), ("Retired",)),
            "lapsed": ((f"let their license lapse in {y}", "no longer holds a current license"),
                       (f"The license held by {{R}} expired in {y} and was not renewed.",
                        "{R} has an expired license."), ("Lapsed", "Expired")),
            "suspended": (("has a suspended license", "is barred from practice pending review"),
                          (f"The board suspended the license of {{R}} in {y}.",
                           "{R} is under suspension and may not practice."), ("Suspended",)),
        }
        vps, sentences, labels = options[entity.status]
        return StatusText(_pick(rng, vps), _pick(rng, sentences), _pick(rng, labels))

    def selection(self, ctx):
        return ("currently holds an active license",
                "Exclude practitioners who are retired or whose license has lapsed, expired or been suspended.",
                "the practitioner's first and last name, without titles or credentials")

    def title(self, rng, ctx):
        year, region = ctx["year"], ctx["region"]
        options = (
            (f"{region} Medical Staff Directory, {year}", "a regional medical staff directory"),
            (f"Credentialing Committee Report, {_pick(rng, W.MONTHS)} {year}", "a credentialing committee report"),
            (f"{ctx['network']}: Practitioner Roster Audit", "a practitioner roster audit"),
            (f"{ctx['network']} Newsletter, {year} Staff Edition", "a hospital network newsletter"),
        )
        return _pick(rng, options)


# --- organizations ---------------------------------------------------------------------------------

class Organizations(Domain):
    name = "organizations"
    noun, noun_plural = "organization", "organizations"
    name_headers = ("Organization", "Company", "Name")
    status_headers = ("Status", "Register status")

    def new_context(self, rng):
        return {"city": _pick(rng, W.CITIES), "year": 2015 + rng.randrange(10),
                "currency": _pick(rng, ("$", "€", "£")), "reg_style": rng.randrange(3)}

    def attribute_pool(self, ctx):
        def revenue(rng, seed):
            return f"{ctx['currency']}{rng.randrange(12, 9000) / 10:.1f} million"

        def registration(rng, seed):
            style = ctx["reg_style"]
            if style == 0:
                return f"REG-{rng.randrange(1000000, 10000000)}"
            if style == 1:
                return f"HRB {rng.randrange(10000, 100000)}"
            return f"No. {rng.randrange(100, 1000)}-{rng.randrange(1000, 10000)}"

        def website(rng, seed):
            return f"www.{_ascii_slug(seed.facts['root'])}{_ascii_slug(seed.facts['sector'])}" \
                   f"{_pick(rng, W.WEB_TLDS)}"

        return (
            _choice_attr("headquarters", "Headquarters", "the headquarters city", ("is headquartered in {v}",
                         "is based in {v}", "has its head office in {v}"), ("a head office in {v}",), W.CITIES),
            Attribute("founded", "Founded", "the founding year", ("was founded in {v}", "was established in {v}",
                      "dates back to {v}"), ("a founding date of {v}",), lambda rng, seed: str(seed.facts["founded"])),
            Attribute("ceo", "CEO", "the chief executive's name", ("is led by {v}", "has {v} as chief executive",
                      "is run by chief executive {v}"), ("chief executive {v}",), lambda rng, seed: _person_name(rng)),
            Attribute("industry", "Industry", "the industry", ("operates in {v}", "works in the {v} sector"),
                      ("a focus on {v}",), lambda rng, seed: seed.facts["industry"]),
            _num_attr("employees", "Employees", "the number of employees", ("employs {v} people",
                      "has a workforce of {v}"), ("a workforce of {v}",), 12, 48000, _fmt_int),
            Attribute("website", "Website", "the website address", ("can be found online at {v}",
                      "publishes its filings at {v}"), ("the website {v}",), website),
            Attribute("revenue", "Revenue", "the annual revenue", ("reported annual revenue of {v}",
                      "turned over {v} last year"), ("annual revenue of {v}",), revenue),
            Attribute("registration_number", "Registration no.", "the registration number",
                      ("is registered under number {v}", "appears in the register as {v}"),
                      ("registration number {v}",), registration),
        )

    def _seed(self, rng, root, sector, industry, suffix, gold, status, ctx):
        name = f"{root} {sector} {suffix}"
        founded = 1850 + rng.randrange(ctx["year"] - 1855)
        facts = {"root": root, "sector": sector, "industry": industry, "suffix": suffix, "founded": founded}
        if not gold:
            facts["status_year"] = max(founded + 3, ctx["year"] - rng.randrange(1, 15))
        return EntitySeed(name, gold, status, facts)

    def gold_seed(self, rng, ctx):
        sector, industry = _pick(rng, W.ORG_SECTORS)
        return self._seed(rng, _pick(rng, W.ORG_ROOTS), sector, industry, _pick(rng, W.ORG_SUFFIXES), True,
                          INCLUDE, ctx)

    def near_duplicate(self, rng, ctx, twin):
        f = twin.facts
        status = _pick(rng, ("dissolved", "acquired", "merged", "liquidation"))
        if rng.random() < 0.7:
            sector, industry = f["sector"], f["industry"]
            suffix = _pick(rng, [s for s in W.ORG_SUFFIXES if s != f["suffix"]])
        else:
            sector, industry = _pick(rng, [s for s in W.ORG_SECTORS if s[0] != f["sector"]])
            suffix = f["suffix"]
        return self._seed(rng, f["root"], sector, industry, suffix, False, status, ctx)

    def status_text(self, rng, entity, ctx):
        y = entity.facts.get("status_year", ctx["year"])
        options = {
            INCLUDE: (("is still operating", "remains an active member", "continues to trade",
                       "is active and in good standing", "is fully operational"),
                      ("{R} is still operating.", "{R} remains active on the register.",
                       "{R} continues to trade under its own name."),
                      ("Active", "Operating", "Trading")),
            "dissolved": ((f"was dissolved in {y}", f"was struck off the register in {y}"),
                          (f"{{R}} was dissolved in {y}.", f"{{R}} was removed from the register in {y}."),
                          ("Dissolved", "Struck off")),
            "acquired": ((f"was acquired in {y} and no longer trades under its own name",),
                         (f"{{R}} was bought by a competitor in {y} and stopped trading under its own name.",),
                         ("Acquired",)),
            "merged": ((f"merged into a larger group in {y}",),
                       (f"{{R}} ceased to exist as a separate company after a merger in {y}.",), ("Merged",)),
            "liquidation": ((f"entered liquidation in {y}", f"ceased trading in {y}"),
                            (f"{{R}} went into liquidation in {y}.", f"{{R}} stopped trading in {y}."),
                            ("In liquidation", "Ceased trading")),
        }
        vps, sentences, labels = options[entity.status]
        return StatusText(_pick(rng, vps), _pick(rng, sentences), _pick(rng, labels))

    def selection(self, ctx):
        return ("is still operating",
                "Skip organizations that were dissolved, acquired, merged into another group, or went into "
                "liquidation.",
                "the full registered name of the organization, including its legal suffix")

    def title(self, rng, ctx):
        city, year = ctx["city"], ctx["year"]
        options = (
            (f"{city} Chamber of Commerce: Annual Report {year}", "a chamber of commerce annual report"),
            (f"Business Registry Extract for the {city} District", "a business registry extract"),
            (f"Survey of {city} Employers, {year}", "a survey of local employers"),
            (f"Regional Business Review: {city} and Surroundings", "a regional business review"),
        )
        return _pick(rng, options)


# --- movies ----------------------------------------------------------------------------------------

def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


class Movies(Domain):
    name = "movies"
    noun, noun_plural = "film", "films"
    name_headers = ("Title", "Film")
    status_headers = ("Year", "Released")
    status_key = "year"

    def new_context(self, rng):
        start = 1950 + rng.randrange(41)  # windows end by 2014, leaving later years for remakes up to 2025
        span = 10 + rng.randrange(16)
        return {"first_year": start, "last_year": start + span - 1,
                "festival": f"{_pick(rng, W.CITIES)} {_pick(rng, ('Film Festival', 'Cinema Days', 'Film Week'))}",
                "archive": f"{_pick(rng, W.FEATURES)} Film Archive"}

    def attribute_pool(self, ctx):
        return (
            Attribute("director", "Director", "the director's name", ("was directed by {v}",
                      "comes from director {v}"), ("direction by {v}",), lambda rng, seed: _person_name(rng)),
            _choice_attr("studio", "Studio", "the studio", ("was produced by {v}", "was made at {v}"),
                         ("backing from {v}",), W.STUDIOS),
            _choice_attr("genre", "Genre", "the genre", ("is a {v}", "belongs to the {v} genre"),
                         ("the {v} genre",), W.GENRES),
            _num_attr("runtime", "Runtime", "the running time", ("runs {v}", "has a running time of {v}"),
                      ("a running time of {v}",), 78, 195, lambda n: f"{n} minutes"),
            _choice_attr("rating", "Rating", "the audience rating", ("is rated {v}", "carries a {v} rating"),
                         ("a {v} rating",), W.RATINGS),
            Attribute("lead_actor", "Lead actor", "the lead actor's name", ("stars {v}", "features {v} in the lead role"),
                      ("a lead performance by {v}",), lambda rng, seed: _person_name(rng)),
            Attribute("box_office", "Box office", "the box office gross", ("grossed {v}",
                      "earned {v} at the box office"), ("a box office gross of {v}",),
                      lambda rng, seed: f"${rng.randrange(5, 4000) / 10:.1f} million"),
            _choice_attr("country", "Country", "the country of production", ("was produced in {v}",
                         "is a production from {v}"), ("a production from {v}",), W.COUNTRIES),
        )

    def gold_seed(self, rng, ctx):
        pattern = _pick(rng, W.TITLE_PATTERNS)
        noun = _pick(rng, W.TITLE_NOUNS)
        title = pattern.format(adj=_pick(rng, W.TITLE_ADJECTIVES), noun=noun, nouns=_plural(noun),
                               noun2=_pick(rng, [n for n in W.TITLE_NOUNS if n != noun]),
                               place=_pick(rng, W.TITLE_PLACES), first=_pick(rng, W.FIRST_NAMES))
        year = ctx["first_year"] + rng.randrange(ctx["last_year"] - ctx["first_year"] + 1)
        if title.startswith("A ") and title[2] in "AEIOU":
            title = "An " + title[2:]
        return EntitySeed(title, True, INCLUDE, {"year": year})

    def near_duplicate(self, rng, ctx, twin):
        before = range(max(1925, ctx["first_year"] - 40), ctx["first_year"])
        after = range(ctx["last_year"] + 1, min(2025, ctx["last_year"] + 40) + 1)
        years = list(before) + list(after)
        return EntitySeed(twin.name, False, "outside", {"year": _pick(rng, years)})

    def refs(self, entity):
        y = entity.facts["year"]
        return (f"{entity.name} ({y})", f"the {y} film {entity.name}", f"the {y} release {entity.name}")

    def status_text(self, rng, entity, ctx):
        y = entity.facts["year"]
        vps = (f"was released in {y}", f"premiered in {y}", f"came out in {y}", f"opened in cinemas in {y}")
        sentences = (f"{{R}} was released in {y}.", f"{{R}} reached audiences in {y}.",
                     f"{{R}} had its premiere in {y}.")
        return StatusText(_pick(rng, vps), _pick(rng, sentences), str(y))

    def selection(self, ctx):
        a, b = ctx["first_year"], ctx["last_year"]
        return (f"was released between {a} and {b}, inclusive",
                f"Films released before {a} or after {b} must be left out, including earlier or later versions "
                "that share a title with an included film.",
                "the film title exactly as written, without the year")

    def title(self, rng, ctx):
        a, b = ctx["first_year"], ctx["last_year"]
        options = (
            (f"{ctx['festival']}: Retrospective Catalogue", "a film festival retrospective catalogue"),
            (f"{ctx['archive']}: Holdings Inventory", "a film archive inventory"),
            (f"Critics' Survey: Cinema from {a - 20} to {min(b + 20, 2025)}", "a critics' survey"),
            (f"{ctx['archive']}: Licensing Audit of the Streaming Library", "a streaming library audit"),
        )
        return _pick(rng, options)


DOMAINS: dict[str, Domain] = {d.name: d for d in (Products(), Medical(), Organizations(), Movies())}
DOMAIN_NAMES = tuple(DOMAINS)


def make_entity(rng: random.Random, seed: EntitySeed, attributes: tuple[Attribute, ...],
                avoid: dict | None = None) -> Entity:
    """Draw the attribute values of ``seed``; values equal to ``avoid`` (a near-duplicate twin's values)
    are redrawn a bounded number of times, so the distractor's values usually differ from its twin's."""
    values = {}
    for attr in attributes:
        value = attr.make(rng, seed)
        for _ in range(20):
            if avoid is None or value != avoid.get(attr.key):
                break
            value = attr.make(rng, seed)
        values[attr.key] = value
    return Entity(seed.name, seed.gold, seed.status, dict(seed.facts), values)
