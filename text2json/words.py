"""Hand-made word lists for the text2json generator.

Everything here is plain data, written by hand so that the generated benchmark does not change when a
third-party fake-data library changes its lists. Changing any list changes the built data: bump
``text2json.build.GENERATOR_VERSION`` when you do.

Invariants the generator relies on (checked in tests/text2json/test_words.py):
- no entry contains "[" or "]" (the published scorer zeroes any answer with a bracket in a value);
- no entry contains a double quote or a backslash (values are copied into JSON and into prose).
"""

FIRST_NAMES = (
    "Aaliyah", "Abel", "Ada", "Adebayo", "Adrian", "Aiko", "Aisha", "Alejandro", "Alina", "Amara",
    "Ambrose", "Anahita", "Anders", "Andrea", "Anika", "Anton", "Arjun", "Astrid", "Aurelio", "Beatrix",
    "Benedikt", "Bianca", "Bogdan", "Bronwyn", "Caius", "Camille", "Carmen", "Cecily", "Chidi", "Chloé",
    "Clement", "Constance", "Dalia", "Damian", "Dara", "Declan", "Delphine", "Desmond", "Dmitri", "Dolores",
    "Eamon", "Edith", "Elif", "Elio", "Elodie", "Emeka", "Emil", "Esme", "Ezra", "Fabian",
    "Farah", "Felipe", "Fenna", "Fiona", "Florian", "Freya", "Gabriel", "Gideon", "Giulia", "Gwen",
    "Hamid", "Hana", "Hannelore", "Hector", "Helga", "Hiroshi", "Idris", "Ilse", "Imani", "Inès",
    "Ingrid", "Ioana", "Isidore", "Ivo", "Jasper", "Javier", "Jiho", "Joaquín", "Jonah", "Josefine",
    "Jun", "Kaito", "Kamala", "Kasimir", "Katya", "Keanu", "Kenji", "Kerstin", "Kofi", "Laila",
    "Lars", "Leandro", "Leonie", "Liesel", "Linnea", "Lorcan", "Lucía", "Ludovic", "Mads", "Magnus",
    "Maite", "Malik", "Mariam", "Marisol", "Mateo", "Matilda", "Meera", "Mikael", "Mina", "Miriam",
    "Nadia", "Nikhil", "Niamh", "Nils", "Noor", "Octavia", "Odette", "Olamide", "Oren", "Oskar",
    "Paloma", "Pavel", "Petra", "Philippa", "Priya", "Quentin", "Rafael", "Rania", "Reuben", "Rhiannon",
    "Rohan", "Rosalind", "Ruairi", "Sabine", "Salome", "Samir", "Saoirse", "Selin", "Seraphina", "Sigrid",
    "Solveig", "Stellan", "Sunita", "Tamsin", "Tariq", "Teodor", "Thandiwe", "Theo", "Tobias", "Ulla",
    "Umar", "Valentina", "Vikram", "Wendell", "Wilhelmina", "Xavier", "Yara", "Yusuf", "Zainab", "Zoltan",
)

SURNAMES = (
    "Abernathy", "Achterberg", "Adeyemi", "Albrecht", "Alcántara", "Amundsen", "Andersson", "Aranda",
    "Ashworth", "Bakshi", "Balogun", "Barrington", "Beaumont", "Bergstrom", "Blackwood", "Bonnaire",
    "Brennan", "Castellanos", "Chakraborty", "Chandler", "Cho", "Coronado", "Dalgaard", "Delacroix",
    "Desai", "Dubois", "Eckhart", "Edevane", "Eriksen", "Esposito", "Falkner", "Farrokh", "Fitzgerald",
    "Fonseca", "Galloway", "Garrido", "Gottlieb", "Grimaldi", "Hallström", "Hargreaves", "Hashimoto",
    "Haverford", "Holloway", "Ibarra", "Iwasaki", "Jablonski", "Jansen", "Jovanović", "Kaminski",
    "Karimi", "Kettering", "Kowalczyk", "Kuroda", "Lachance", "Lindqvist", "Lombardi", "Lowell",
    "Lundgren", "Macallister", "Maddox", "Malhotra", "Marchetti", "Mbeki", "Mendelsohn", "Montague",
    "Moreau", "Nakamura", "Navarro", "Nwosu", "Oakley", "Obradović", "O’Brien", "O’Connell", "Okafor",
    "Okonkwo", "Olmstead", "Osei", "Pellegrini", "Petrakis", "Pham", "Quintero", "Radcliffe", "Rahimi",
    "Ravensworth", "Reinholt", "Rosenthal", "Sandoval", "Santangelo", "Schreiber", "Sekibo", "Severin",
    "Shapiro", "Sorensen", "Stavros", "Sutherland", "Takahashi", "Tanaka", "Thorne", "Trevelyan",
    "Underhill", "Valdivia", "Vance", "Varga", "Vasquez", "Villeneuve", "Voss", "Wakefield", "Waverly",
    "Weatherby", "Whitcombe", "Winterbourne", "Wojcik", "Yamamoto", "Yilmaz", "Zabala", "Zelenko",
    "Zimmermann",
)

CITIES = (
    "Aberdeen", "Adelaide", "Antwerp", "Asheville", "Auckland", "Austin", "Baltimore", "Bergen",
    "Bilbao", "Bologna", "Boise", "Bordeaux", "Brno", "Calgary", "Cardiff", "Charleston", "Cork",
    "Dayton", "Dresden", "Dunedin", "Edmonton", "Eindhoven", "Fresno", "Galway", "Ghent", "Gothenburg",
    "Graz", "Halifax", "Hamilton", "Hobart", "Innsbruck", "Kraków", "Leeds", "Leipzig", "Lille",
    "Linz", "Lisbon", "Louisville", "Lyon", "Madison", "Malmö", "Marseille", "Memphis", "Montpellier",
    "Nantes", "Newcastle", "Norwich", "Omaha", "Oulu", "Perth", "Porto", "Providence", "Québec City",
    "Reno", "Richmond", "Rotterdam", "Salzburg", "Savannah", "Seville", "Sheffield", "Spokane",
    "Tacoma", "Tampere", "Toulouse", "Trieste", "Tucson", "Turku", "Utrecht", "Valencia", "Winnipeg",
    "Wrocław", "York", "Zaragoza",
)

COUNTRIES = (
    "Argentina", "Australia", "Austria", "Belgium", "Brazil", "Canada", "Chile", "Czechia", "Denmark",
    "Finland", "France", "Germany", "Ghana", "Iceland", "India", "Ireland", "Italy", "Japan", "Kenya",
    "Mexico", "Morocco", "Netherlands", "New Zealand", "Nigeria", "Norway", "Poland", "Portugal",
    "South Korea", "Spain", "Sweden", "Switzerland", "Turkey", "United Kingdom", "United States",
)

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)

# --- products ------------------------------------------------------------------------------------

BRANDS = (
    "Aldenmoor", "Arkwell", "Baltera", "Brightfold", "Calvera", "Corvane", "Dalvik", "Elmtree",
    "Embervale", "Ferrosa", "Galloran", "Halcyra", "Helmsby", "Istara", "Junova", "Kestrel",
    "Korvik", "Larkspur", "Lumetra", "Marrowgate", "Merivale", "Nordhaven", "Novalis", "Obsidia",
    "Orvanta", "Pellucid", "Quorra", "Radiant", "Ravelin", "Saltmarsh", "Solenne", "Strandberg",
    "Tarrant", "Tessaro", "Thornbury", "Ulvane", "Valdera", "Veltron", "Vireo", "Wexford",
    "Wyncrest", "Xandor", "Yardley", "Zephyra",
)

SERIES = (
    "Aero", "Apex", "Arc", "Atlas", "Aura", "Axis", "Blaze", "Brio", "Cadence", "Core", "Crest",
    "Delta", "Drift", "Echo", "Edge", "Flux", "Forge", "Glide", "Halo", "Helix", "Ion", "Jet",
    "Kite", "Lumen", "Meridian", "Nimbus", "Nova", "Onyx", "Orbit", "Pulse", "Quill", "Rally",
    "Ridge", "Sable", "Slate", "Sonic", "Summit", "Tempo", "Terra", "Titan", "Vector", "Verve",
    "Vista", "Volt", "Zenith",
)

SERIES_CODES = ("AX", "BX", "CR", "DL", "EV", "FX", "GT", "HX", "KR", "LX", "MZ", "PX", "QS", "RT",
                "SV", "TX", "VR", "WX", "XR", "ZL")

COLORS = (
    "Graphite Grey", "Arctic White", "Midnight Blue", "Forest Green", "Sandstone Beige", "Crimson Red",
    "Slate Black", "Copper Bronze", "Ocean Teal", "Pebble Grey", "Sage Green", "Ivory Cream",
    "Charcoal", "Burnt Orange", "Storm Blue", "Rose Gold", "Matte Black", "Silver Mist",
    "Olive Drab", "Plum Purple",
)

# --- medical -------------------------------------------------------------------------------------

SPECIALTIES = (
    "Allergy and Immunology", "Anesthesiology", "Cardiology", "Child Psychiatry", "Dermatology",
    "Emergency Medicine", "Endocrinology", "Family Medicine", "Gastroenterology", "Geriatric Medicine",
    "Hematology", "Infectious Disease", "Internal Medicine", "Interventional Radiology", "Nephrology",
    "Neurology", "Neurosurgery", "Obstetrics and Gynecology", "Oncology", "Ophthalmology",
    "Orthopedic Surgery", "Otolaryngology", "Palliative Care", "Pathology", "Pediatric Cardiology",
    "Pediatric Neurology", "Pediatrics", "Physical Medicine and Rehabilitation", "Plastic Surgery",
    "Psychiatry", "Pulmonology", "Radiation Oncology", "Rheumatology", "Sleep Medicine",
    "Sports Medicine", "Thoracic Surgery", "Urology", "Vascular Surgery",
)

HOSPITAL_PATTERNS = (
    "{city} General Hospital", "St. {saint} Medical Center", "{surname} Memorial Hospital",
    "{city} University Hospital", "{feature} Valley Health", "Mercy {feature} Hospital",
    "{city} Regional Medical Center", "Our Lady of {feature} Hospital", "{surname} Children's Hospital",
    "{feature} Ridge Clinic", "{city} Community Health Center", "{surname} Heart Institute",
)

SAINTS = ("Agnes", "Anselm", "Bartholomew", "Brendan", "Brigid", "Catherine", "Columba", "Dominic",
          "Elias", "Gregory", "Hilda", "Jude", "Lucian", "Margaret", "Oswald", "Raphael", "Sebastian",
          "Teresa", "Vincent", "Winifred")

FEATURES = ("Cedar", "Clearwater", "Elm", "Hawthorn", "Juniper", "Lakeside", "Maple", "Meadow",
            "Northgate", "Oakridge", "Pinecrest", "Riverbend", "Silver Birch", "Stonebridge",
            "Sunrise", "Westbrook", "Willow", "Harbor", "Highland", "Prairie")

CREDENTIALS = ("MD", "MD", "MD", "DO", "NP", "PA-C")

# --- organizations -------------------------------------------------------------------------------

ORG_ROOTS = (
    "Abbotsford", "Alder", "Amberline", "Ashgrove", "Bellhaven", "Birchwood", "Blackstone", "Bluewater",
    "Brightwater", "Caldwell", "Carrington", "Cedarline", "Clearfield", "Cobalt", "Copperfield",
    "Crestview", "Dunmore", "Eastbrook", "Evergreen", "Fairhaven", "Falcon", "Foxglove", "Glenmore",
    "Granite", "Greystone", "Halvorsen", "Harborview", "Hartwell", "Highgate", "Ironbridge", "Juniper",
    "Kingsley", "Lakemont", "Lindenberg", "Marlowe", "Meadowbank", "Northwind", "Oakhurst", "Pemberton",
    "Pinnacle", "Quarrystone", "Redfern", "Riverside", "Rowan", "Saltcoast", "Silverline", "Stonegate",
    "Summerhill", "Thistledown", "Trident", "Vantage", "Westmoor", "Whitfield", "Windmere", "Yarrow",
)

ORG_SECTORS = (
    ("Logistics", "freight and logistics"), ("Analytics", "data analytics"), ("Foods", "food processing"),
    ("Energy", "renewable energy"), ("Textiles", "textile manufacturing"), ("Robotics", "industrial robotics"),
    ("Insurance", "commercial insurance"), ("Biotech", "biotechnology"), ("Construction", "civil construction"),
    ("Shipping", "maritime shipping"), ("Software", "enterprise software"), ("Pharma", "pharmaceuticals"),
    ("Media", "digital media"), ("Agritech", "agricultural technology"), ("Minerals", "mining and minerals"),
    ("Hospitality", "hotels and hospitality"), ("Aerospace", "aerospace components"),
    ("Telecom", "telecommunications"), ("Capital", "investment management"), ("Water", "water utilities"),
)

ORG_SUFFIXES = ("Group", "Holdings", "Partners", "Ltd.", "Inc.", "Cooperative", "Foundation",
                "& Co.", "Associates", "Corporation", "Collective", "Trust")

WEB_TLDS = (".com", ".org", ".net", ".co", ".io", ".eu")

# --- movies --------------------------------------------------------------------------------------

TITLE_ADJECTIVES = (
    "Silent", "Crimson", "Hollow", "Last", "Broken", "Golden", "Distant", "Quiet", "Burning", "Frozen",
    "Hidden", "Wandering", "Restless", "Paper", "Iron", "Velvet", "Midnight", "Bitter", "Electric",
    "Forgotten", "Gentle", "Savage", "Lonely", "Endless", "Scarlet", "Glass", "Northern", "Secret",
)

TITLE_NOUNS = (
    "Harbor", "Orchard", "Lantern", "Meridian", "River", "Crossing", "Garden", "Mirror", "Kingdom",
    "Horizon", "Signal", "Winter", "Summer", "Tide", "Letter", "Station", "Echo", "Compass", "Shore",
    "Bridge", "Island", "Parade", "Frontier", "Circus", "Anthem", "Cathedral", "Monsoon", "Carnival",
    "Lighthouse", "Desert", "Empire", "Voyage", "Requiem", "Alibi", "Mountain", "Meadow",
)

TITLE_PLACES = (
    "Marrakesh", "Vienna", "the Valley", "Paradise", "the North", "Saint-Malo", "Hollow Creek",
    "Brooklyn", "the Dunes", "Lisbon", "the Old Quarter", "Kyoto", "Montana", "the Coast",
)

TITLE_PATTERNS = (
    "The {adj} {noun}", "{adj} {noun}", "The {noun} of {place}", "A {noun} in {place}",
    "{first}'s {noun}", "The {noun} and the {noun2}", "{noun} at Dawn", "Beyond the {noun}",
    "{adj} {nouns}", "Night of the {adj} {noun}", "The {noun} Keeper", "After the {noun}",
    "{noun} Road", "Letters from {place}", "Return to {place}",
)

STUDIOS = (
    "Arclight Pictures", "Bellweather Films", "Blue Heron Studios", "Cinder Box Productions",
    "Copperline Entertainment", "Driftwood Pictures", "Eastgate Films", "Foxfire Studios",
    "Gilded Frame Pictures", "Halcyon Reel", "Ironwood Films", "Kestrel Pictures", "Lanternlight Studios",
    "Marquee Hill", "Northstar Features", "Obelisk Films", "Paper Moon Pictures", "Quicksilver Studios",
    "Redwood Cinema", "Silver Fern Films", "Starling Pictures", "Tidewater Films", "Umbra Studios",
    "Vantage Point Pictures", "Westwind Productions",
)

GENRES = (
    "psychological thriller", "romantic comedy", "war drama", "science fiction", "neo-noir",
    "coming-of-age drama", "historical epic", "musical", "heist comedy", "horror", "western",
    "documentary", "animated adventure", "legal drama", "political thriller", "family comedy",
    "mystery", "disaster film", "sports drama", "fantasy adventure", "biographical drama",
    "spy thriller", "satire", "road movie",
)

RATINGS = ("G", "PG", "PG-13", "R", "NC-17")

# --- filler prose --------------------------------------------------------------------------------

OPENERS = (
    "In practice,", "As a result,", "By contrast,", "Meanwhile,", "According to the minutes,",
    "For the record,", "Looking ahead,", "On balance,", "In the meantime,", "At the same time,",
    "To be fair,", "Taken together,", "In most cases,", "Earlier this year,", "Since then,",
    "Broadly speaking,", "Not surprisingly,", "With that in mind,", "Even so,", "In hindsight,",
    "As expected,", "Unusually,", "Over the past year,", "During the review,", "Once again,",
    "In several regions,", "Following the audit,", "For now,", "In short,", "Perhaps more importantly,",
)

TAILS = (
    "in the northern region", "after the spring review", "for the third consecutive quarter",
    "without much fanfare", "despite the usual delays", "ahead of the autumn deadline",
    "in line with last year's plan", "across most sites", "at the request of the board",
    "with mixed results", "before the end of the fiscal year", "in two of the five regions",
    "following several complaints", "as a temporary measure", "once the budget was approved",
    "under the revised guidelines", "during the winter months", "at a modest cost",
    "after a long consultation", "in close cooperation with partners", "for the first time",
    "on a trial basis", "with little disruption", "in response to feedback", "as part of the pilot",
)

PAST_VERBS = (
    "reviewed", "postponed", "simplified", "questioned", "expanded", "revised", "documented",
    "streamlined", "audited", "reorganized", "discussed", "approved", "tightened", "relaxed",
    "extended", "measured", "compared", "flagged", "standardized", "renegotiated", "published",
    "consolidated", "reassessed", "clarified", "monitored",
)

MODAL_VERBS = (
    "should revisit", "will publish", "could extend", "may simplify", "would like to review",
    "might expand", "will probably standardize", "could soon renegotiate", "might consolidate",
    "will likely postpone",
)

GENERIC_ADJECTIVES = (
    "modest", "significant", "steady", "unexpected", "gradual", "sharp", "noticeable", "limited",
    "considerable", "slight", "marked", "persistent", "temporary", "welcome", "uneven",
)

TREND_NOUNS = ("increase", "decline", "improvement", "shift", "slowdown", "recovery", "drop", "rise")

FILLER_VOCAB = {
    "products": {
        "subjects": (
            "the purchasing team", "regional distributors", "most reviewers", "the product committee",
            "several retailers", "the quality lab", "our field testers", "the warehouse staff",
            "independent resellers", "the support desk", "the design group", "two large chains",
            "the logistics partner", "online shoppers", "the returns department",
        ),
        "objects": (
            "the returns policy", "shipping timelines", "the packaging guidelines", "the spare-parts program",
            "warranty claims", "the display layout", "the loyalty scheme", "seasonal discounts",
            "supplier contracts", "the testing protocol", "stock rotation", "customer surveys",
            "the repair network", "import duties", "the labeling rules", "bundle pricing",
            "the trade-in program", "firmware update schedules", "safety certifications",
        ),
        "topics": ("delivery times", "packaging waste", "firmware updates", "battery safety",
                   "spare parts", "noise levels", "charging cables", "user manuals", "price matching",
                   "display units", "accessory bundles", "repairability"),
        "roles": ("a senior buyer", "the head of merchandising", "one store manager", "a field tester",
                  "the quality lead", "a logistics coordinator"),
        "table_headers": (("Region", "Units shipped", "Returns"), ("Quarter", "Orders", "Backorders"),
                          ("Channel", "Share of sales", "Growth"), ("Warehouse", "Pallets", "Lead time")),
    },
    "medical": {
        "subjects": (
            "the credentialing committee", "the medical staff office", "several department chairs",
            "the nursing council", "hospital administrators", "the quality board", "the residency program",
            "the patient advocacy group", "the compliance team", "regional health officials",
            "the peer review panel", "the scheduling office", "clinic managers",
        ),
        "objects": (
            "on-call rotations", "the referral process", "continuing education requirements",
            "the telehealth guidelines", "malpractice coverage", "privileging criteria", "patient wait times",
            "the infection control plan", "discharge summaries", "the formulary", "after-hours coverage",
            "the interpreter service", "the handover protocol", "vaccination records", "staffing ratios",
        ),
        "topics": ("wait times", "parking at the main campus", "the new imaging wing", "telehealth visits",
                   "prescription refills", "hand hygiene", "night shifts", "referral letters",
                   "medical records", "the flu season", "billing codes", "interpreter access"),
        "roles": ("a department chair", "the chief medical officer", "a senior nurse", "one committee member",
                  "a patient representative", "the compliance officer"),
        "table_headers": (("Department", "Open positions", "Filled"), ("Month", "Referrals", "Median wait"),
                          ("Site", "Visits", "No-shows"), ("Quarter", "Audits", "Findings")),
    },
    "organizations": {
        "subjects": (
            "the chamber's board", "member companies", "the registry office", "several local employers",
            "the economic council", "industry associations", "the survey team", "regional lenders",
            "the trade delegation", "small suppliers", "the licensing authority", "the editorial desk",
        ),
        "objects": (
            "the membership fees", "export incentives", "the annual survey", "reporting requirements",
            "apprenticeship programs", "the registry format", "procurement rules", "the skills agenda",
            "energy costs", "commercial rents", "cross-border tariffs", "the grant scheme",
            "the mentoring network", "late-payment rules", "the sustainability charter",
        ),
        "topics": ("hiring plans", "energy prices", "export orders", "office space", "interest rates",
                   "supply chains", "skills shortages", "public tenders", "broadband coverage",
                   "the new bypass road", "payment terms", "insurance premiums"),
        "roles": ("a board member", "the chamber president", "one founder", "a registry clerk",
                  "a local economist", "the survey coordinator"),
        "table_headers": (("Sector", "Firms surveyed", "Hiring"), ("Year", "Registrations", "Closures"),
                          ("District", "Employers", "Vacancies"), ("Quarter", "Exports", "Imports")),
    },
    "movies": {
        "subjects": (
            "the programming committee", "the archive staff", "most critics", "the festival jury",
            "restoration specialists", "the distribution team", "audiences at the screenings",
            "the curators", "the licensing office", "film historians", "the subtitle team",
            "several exhibitors", "the catalogue editors",
        ),
        "objects": (
            "the screening schedule", "the restoration budget", "the subtitle files", "print conditions",
            "the licensing terms", "the retrospective program", "the catalogue format", "ticket pricing",
            "the archive database", "rights clearances", "the projection equipment", "the press kit",
            "the poster collection", "the digitization plan", "the jury guidelines",
        ),
        "topics": ("aspect ratios", "film grain", "subtitle timing", "sold-out screenings", "the sound mix",
                   "rights holders", "35mm prints", "restored colors", "late-night shows", "director talks",
                   "festival passes", "archival scans"),
        "roles": ("a senior curator", "the festival director", "one projectionist", "a visiting critic",
                  "the head archivist", "a programmer"),
        "table_headers": (("Venue", "Screenings", "Attendance"), ("Day", "Sessions", "Sold out"),
                          ("Format", "Titles", "Restored"), ("Program", "Films", "Premieres")),
    },
}

# Per domain: (opening titles, middle titles, closing titles). A document opens with one opening
# title, closes with one closing title, and uses middle titles (shuffled, cycled) in between.
SECTION_TITLES = {
    "products": (
        ("Market overview", "Introduction", "Scope of this edition"),
        ("Methodology", "Regional notes", "Pricing context", "Supply and logistics", "Lineup details",
         "Field testing", "Retail feedback", "Warranty and service", "Notes from the buying desk",
         "Accessories and bundles", "Returns analysis", "Catalogue entries", "Changes since the last edition",
         "Dealer questions", "Stock levels", "Competitor watch"),
        ("Outlook", "Summary", "Appendix"),
    ),
    "medical": (
        ("Background", "Scope of this report", "Introduction"),
        ("Credentialing activity", "Department updates", "Staff directory", "Committee notes", "Patient access",
         "Quality and safety", "Roster changes", "Education and training", "After-hours coverage",
         "Practitioner listings", "Outreach clinics", "Compliance review", "Referral patterns",
         "Privileges and renewals"),
        ("Follow-up items", "Summary", "Appendix"),
    ),
    "organizations": (
        ("Introduction", "Economic context", "About this report"),
        ("Member survey", "Registry extract", "Sector highlights", "Employment trends", "Company profiles",
         "Notes on methodology", "Changes in status", "Events and meetings", "Trade and exports",
         "Directory entries", "Board remarks", "Financing conditions", "New registrations"),
        ("Regional outlook", "Summary", "Appendix"),
    ),
    "movies": (
        ("Introduction", "About this catalogue", "From the curators"),
        ("Programme notes", "Restoration work", "Screening schedule", "Critics' survey", "Archive holdings",
         "Film entries", "Rights and licensing", "Audience notes", "Retrospective selection", "Technical notes",
         "Guest appearances", "Print sources"),
        ("Acknowledgements", "Summary", "Appendix"),
    ),
}
