"""Names, domains and tax ids for the simulated firm's clients and people.

Each client has one real identity (`base` name, country) and the spelling each system uses:
the CRM's everyday name, the ERP's legal name, the billing platform's and the PSA's. The
variants are the messy-but-valid kind ("Northwind Logistics" / "NORTHWIND LOGISTICS LTD")
that identity resolution must see through.
"""

from __future__ import annotations

import numpy as np

FIRST_PARTS = [
    "North", "Blue", "Silver", "Bright", "Iron", "Red", "Green", "Clear", "Summit", "Atlas",
    "Pioneer", "Harbor", "Golden", "Stone", "Oak", "Maple", "Cedar", "River", "Lake", "Sun",
    "Star", "Crown", "Eagle", "Falcon", "Granite", "Copper", "Crystal", "Polar", "Coastal", "Prime",
    "Alder", "Birch", "Swift", "Noble", "Vertex", "Apex", "Orbit", "Quantum", "Nova", "Zenith",
    "Hollow", "Meadow", "Ember", "Frost", "Tidal", "Aspen", "Willow", "Beacon", "Rapid", "Solar",
]
SECOND_PARTS = [
    "wind", "peak", "line", "water", "stone", "field", "bridge", "gate", "works", "point",
    "way", "ridge", "crest", "haven", "view", "brook", "wood", "mark", "light", "path",
    "port", "forge", "vale", "spring", "shore", "hill", "rock", "star", "bay", "ford",
]
SECTORS = [
    "Logistics", "Health", "Capital", "Energy", "Foods", "Analytics", "Systems", "Partners",
    "Manufacturing", "Retail", "Insurance", "Media", "Pharma", "Telecom", "Software", "Holdings",
    "Mobility", "Materials", "Robotics", "Services",
]
INDUSTRY_BY_SECTOR = {  # values of HubSpot's `industry` enumeration
    "Logistics": "LOGISTICS_AND_SUPPLY_CHAIN", "Health": "HOSPITAL_HEALTH_CARE",
    "Capital": "FINANCIAL_SERVICES", "Energy": "OIL_ENERGY", "Foods": "FOOD_BEVERAGES",
    "Analytics": "INFORMATION_TECHNOLOGY_AND_SERVICES", "Systems": "COMPUTER_SOFTWARE",
    "Partners": "MANAGEMENT_CONSULTING", "Manufacturing": "MANUFACTURING", "Retail": "RETAIL",
    "Insurance": "INSURANCE", "Media": "MARKETING_AND_ADVERTISING", "Pharma": "PHARMACEUTICALS",
    "Telecom": "TELECOMMUNICATIONS", "Software": "COMPUTER_SOFTWARE", "Holdings": "BANKING",
    "Mobility": "AUTOMOTIVE", "Materials": "CONSTRUCTION", "Robotics": "MANUFACTURING",
    "Services": "INFORMATION_TECHNOLOGY_AND_SERVICES",
}
NAME_SPACE = len(FIRST_PARTS) * len(SECOND_PARTS) * len(SECTORS)

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James",
    "Mia", "William", "Amelia", "Benjamin", "Harper", "Lucas", "Evelyn", "Henry", "Abigail", "Theo",
    "Emily", "Jack", "Ella", "Leo", "Charlotte", "Oscar", "Grace", "Arthur", "Chloe", "Felix",
    "Hannah", "Jonas", "Lena", "Lukas", "Marie", "Paul", "Sofia", "Finn", "Clara", "Max",
    "Camille", "Louis", "Chloé", "Hugo", "Inès", "Jules", "Sanne", "Daan", "Fleur", "Bram",
    "Priya", "Arjun", "Mei", "Wei", "Yuki", "Kenji", "Fatima", "Omar", "Aisha", "Kwame",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch",
    "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "de Vries", "Jansen", "van Dijk", "Bakker", "Visser",
    "Patel", "Shah", "Chen", "Wang", "Tanaka", "Sato", "Khan", "Ali", "Mensah", "Okafor",
]
JOB_TITLES = [
    "Chief Financial Officer", "Head of Operations", "VP Engineering", "Procurement Manager",
    "Finance Director", "Chief Operating Officer", "IT Director", "Head of Strategy",
    "Accounts Payable Lead", "Programme Director",
]

# country: (legal forms for the ERP's legal name, the CRM's short suffix options, tld, phone prefix, city)
COUNTRIES = {
    "US": (["Inc.", "Corporation", "LLC"], ["Inc", "Corp", ""], "com", "+1", ["New York", "Chicago", "Austin", "Boston", "Seattle"]),
    "GB": (["Ltd", "Limited", "plc"], ["Ltd", ""], "co.uk", "+44", ["London", "Manchester", "Leeds", "Bristol", "Edinburgh"]),
    "DE": (["GmbH", "AG"], ["GmbH", ""], "de", "+49", ["Berlin", "Munich", "Hamburg", "Frankfurt", "Cologne"]),
    "FR": (["SAS", "SA"], ["SAS", ""], "fr", "+33", ["Paris", "Lyon", "Toulouse", "Nantes", "Lille"]),
    "NL": (["B.V.", "N.V."], ["BV", ""], "nl", "+31", ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "The Hague"]),
}
COUNTRY_CODES = list(COUNTRIES)
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France", "NL": "Netherlands"}


def client_base_names(name_ids: np.ndarray) -> tuple[list[str], list[str]]:
    """Base names ("Northwind Logistics") and their sector, from indices into the name space."""
    n_second, n_sector = len(SECOND_PARTS), len(SECTORS)
    names, sectors = [], []
    for raw in name_ids.tolist():
        cycle, name_id = divmod(raw, NAME_SPACE)
        first, rest = divmod(name_id, n_second * n_sector)
        second, sector = divmod(rest, n_sector)
        word = FIRST_PARTS[first] + SECOND_PARTS[second]
        suffix = f" {cycle + 1}" if cycle else ""
        names.append(f"{word} {SECTORS[sector]}{suffix}")
        sectors.append(SECTORS[sector])
    return names, sectors


def domain_for(base: str, country: str) -> str:
    return "".join(ch for ch in base.lower() if ch.isalnum()) + "." + COUNTRIES[country][2]


def legal_name(base: str, country: str, pick: int) -> str:
    forms = COUNTRIES[country][0]
    return f"{base} {forms[pick % len(forms)]}"


def system_names(base: str, country: str, variant: int) -> dict[str, str]:
    """How each system spells one client. `variant` (0..99) decides the mess."""
    short_forms = COUNTRIES[country][1]
    short = short_forms[variant % len(short_forms)]
    crm = f"{base} {short}".strip()
    erp = legal_name(base, country, variant // 7)
    if variant % 9 == 0:
        erp = erp.upper()
    stripe = erp if variant % 3 == 0 else (crm + "." if short and variant % 5 == 0 else crm)
    harvest = base.upper() if variant % 4 == 0 else (f"{base} ({country})" if variant % 11 == 0 else base)
    return {"hubspot": crm, "erp": erp, "stripe": stripe, "harvest": harvest}


def duplicate_name(name: str, variant: int) -> str:
    """A second record's spelling of the same client, as a careless data entry would make it."""
    options = [name.upper(), name.replace(" ", "-", 1), name + " (old)", name.lower(), name + " Group"]
    return options[variant % len(options)]


def tax_id(country: str, number: int) -> str:
    digits = f"{number % 1_000_000_000:09d}"
    if country == "US":
        return f"{digits[:2]}-{digits[2:9]}"
    if country == "FR":
        return f"FR{number % 97:02d}{digits}"
    if country == "NL":
        return f"NL{digits}B01"
    return f"{country}{digits}"


def person_names(first_ids: np.ndarray, last_ids: np.ndarray) -> tuple[list[str], list[str]]:
    return ([FIRST_NAMES[i % len(FIRST_NAMES)] for i in first_ids.tolist()],
            [LAST_NAMES[i % len(LAST_NAMES)] for i in last_ids.tolist()])


def email_local(first: str, last: str) -> str:
    ascii_only = (first + "." + last).lower().replace(" ", "")
    for accented, plain in (("é", "e"), ("è", "e"), ("ü", "u"), ("ö", "o"), ("ä", "a")):
        ascii_only = ascii_only.replace(accented, plain)
    return ascii_only
