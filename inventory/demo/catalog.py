"""Demo catalog for a home infusion pharmacy: items, lots, untracked receipts and serials.

Pure data plus a GTIN helper. Nothing here touches the database; seeding code reads
these tuples and posts the corresponding receipts through the normal ledger.

All GTINs use the fictitious GS1 company prefix ``0361234`` (with the GS1 US leading ``0``),
so payloads are ``"0" + "0361234" + <5-digit item reference>`` and the check digit is computed
at import time by :func:`gtin14`, which guarantees it is valid.
"""

from dataclasses import dataclass
from decimal import Decimal

from biip.checksums import gs1_standard_check_digit

from inventory.catalog.models import Category, Tracking

CATEGORIES: frozenset[str] = frozenset(category.value for category in Category)
TRACKING_MODES: frozenset[str] = frozenset(mode.value for mode in Tracking)


def gtin14(payload13: str) -> str:
    """Return the 14-digit GTIN made of ``payload13`` followed by its GS1 check digit."""
    if len(payload13) != 13:
        raise ValueError("GTIN-14 payload must be exactly 13 digits")
    return payload13 + str(gs1_standard_check_digit(payload13))


@dataclass(frozen=True)
class DemoItem:
    """One catalog item. ``unit_cost`` is the typical purchase cost per unit of issue."""

    sku: str
    name: str
    category: str
    unit: str
    tracking: str  # "none" | "lot" | "serial"
    gtin: str
    reorder_point: int
    reorder_quantity: int
    unit_cost: Decimal
    daily_rate: Decimal | None = None  # equipment only: per diem charge per day at the home
    ert_template_quantity_per_day: int = 0  # quantity in the enzyme-replacement day template

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.sku}: unknown category {self.category!r}")
        if self.tracking not in TRACKING_MODES:
            raise ValueError(f"{self.sku}: unknown tracking {self.tracking!r}")
        if len(self.gtin) != 14 or gtin14(self.gtin[:13]) != self.gtin:
            raise ValueError(f"{self.sku}: invalid GTIN-14 {self.gtin!r}")
        if (self.daily_rate is not None) != (self.tracking == "serial"):
            raise ValueError(f"{self.sku}: daily_rate is required for, and only for, equipment")


@dataclass(frozen=True)
class DemoLot:
    """A received lot of a lot-tracked item; ``expiry_in_days`` is counted from today."""

    sku: str
    lot: str
    expiry_in_days: int
    quantity: int
    unit_cost: Decimal


D = Decimal

# Tabular data: keep one compact block per item instead of one argument per line.
# fmt: off
DEMO_ITEMS: tuple[DemoItem, ...] = (
    # --- Administration sets ---------------------------------------------------------------
    DemoItem(
        "ADM-SET-104", "Primary IV administration set, 15 drops/mL, 104 in",
        "administration_set", "each", "lot", gtin14("0036123400001"),
        150, 500, D("3.2500"), ert_template_quantity_per_day=1,
    ),
    DemoItem(
        "ADM-SET-037", "Secondary IV administration set, 15 drops/mL, 37 in",
        "administration_set", "each", "lot", gtin14("0036123400002"),
        60, 200, D("1.9500"),
    ),
    DemoItem(
        "ADM-CAS-100", "Ambulatory infusion pump medication cassette reservoir, 100 mL",
        "administration_set", "each", "lot", gtin14("0036123400003"),
        60, 200, D("18.5000"),
    ),
    DemoItem(
        "ADM-EXT-060", "Ambulatory pump extension set with anti-siphon valve, 60 in",
        "administration_set", "each", "lot", gtin14("0036123400004"),
        60, 200, D("6.7500"),
    ),
    DemoItem(
        "ADM-EXT-007", "Small-bore extension set with needleless connector, 7 in",
        "administration_set", "each", "lot", gtin14("0036123400005"),
        100, 300, D("1.4500"),
    ),
    # --- Filters -----------------------------------------------------------------------------
    DemoItem(
        "FLT-022-LPB", "0.2 micron low-protein-binding in-line filter extension set",
        "filter", "each", "lot", gtin14("0036123400006"),
        150, 500, D("9.8500"), ert_template_quantity_per_day=1,
    ),
    DemoItem(
        "FLT-120-LIP", "1.2 micron in-line filter extension set (lipid-compatible)",
        "filter", "each", "lot", gtin14("0036123400007"),
        40, 150, D("7.4000"),
    ),
    # --- Catheters ---------------------------------------------------------------------------
    DemoItem(
        "CTH-PIV-22", "Peripheral IV catheter 22G x 1 in",
        "catheter", "each", "lot", gtin14("0036123400008"),
        150, 500, D("1.6500"), ert_template_quantity_per_day=1,
    ),
    DemoItem(
        "CTH-PIV-24", "Peripheral IV catheter 24G x 3/4 in",
        "catheter", "each", "lot", gtin14("0036123400009"),
        80, 250, D("1.7000"),
    ),
    DemoItem(
        "CTH-PIV-20", "Peripheral IV catheter 20G x 1 in",
        "catheter", "each", "lot", gtin14("0036123400010"),
        50, 200, D("1.6500"),
    ),
    # --- Needles -----------------------------------------------------------------------------
    DemoItem(
        "NDL-BFY-23", "Safety butterfly needle 23G x 3/4 in, 12 in tubing",
        "needle", "each", "lot", gtin14("0036123400011"),
        80, 250, D("1.2000"),
    ),
    DemoItem(
        "NDL-BFY-25", "Safety butterfly needle 25G x 3/4 in, 12 in tubing",
        "needle", "each", "lot", gtin14("0036123400012"),
        50, 150, D("1.2500"),
    ),
    DemoItem(
        "NDL-HUB-20", "Safety Huber needle 20G x 3/4 in with extension set (port access)",
        "needle", "each", "lot", gtin14("0036123400013"),
        40, 120, D("8.9000"),
    ),
    DemoItem(
        "NDL-BLF-18", "Blunt fill needle with filter 18G x 1-1/2 in",
        "needle", "each", "lot", gtin14("0036123400014"),
        200, 600, D("0.1800"),
    ),
    # --- Syringes ----------------------------------------------------------------------------
    DemoItem(
        "SYR-003-LL", "Syringe 3 mL luer-lock",
        "syringe", "each", "lot", gtin14("0036123400015"),
        100, 400, D("0.1200"),
    ),
    DemoItem(
        "SYR-010-LL", "Syringe 10 mL luer-lock",
        "syringe", "each", "lot", gtin14("0036123400016"),
        200, 600, D("0.1900"),
    ),
    DemoItem(
        "SYR-050-LL", "Syringe 50 mL luer-lock",
        "syringe", "each", "lot", gtin14("0036123400017"),
        60, 200, D("0.9500"),
    ),
    # --- Connectors (no dedicated category) --------------------------------------------------
    DemoItem(
        "CON-NLC-001", "Needleless connector, neutral displacement",
        "other", "each", "lot", gtin14("0036123400018"),
        150, 500, D("1.3500"),
    ),
    # --- Flushes -----------------------------------------------------------------------------
    DemoItem(
        "FLS-NS-10", "0.9% sodium chloride flush 10 mL prefilled syringe",
        "flush", "each", "lot", gtin14("0036123400019"),
        400, 1000, D("0.2900"), ert_template_quantity_per_day=4,
    ),
    DemoItem(
        "FLS-NS-05", "0.9% sodium chloride flush 5 mL prefilled syringe",
        "flush", "each", "lot", gtin14("0036123400020"),
        200, 600, D("0.2700"),
    ),
    DemoItem(
        "FLS-HEP-100", "Heparin lock flush 100 units/mL 5 mL prefilled syringe",
        "flush", "each", "lot", gtin14("0036123400021"),
        100, 300, D("1.1500"),
    ),
    DemoItem(
        "FLS-HEP-010", "Heparin lock flush 10 units/mL 5 mL prefilled syringe",
        "flush", "each", "lot", gtin14("0036123400022"),
        100, 300, D("0.9500"),
    ),
    # --- Prep --------------------------------------------------------------------------------
    DemoItem(
        "PRP-ALC-001", "Alcohol prep pad, 70% isopropyl alcohol, medium",
        "prep", "each", "lot", gtin14("0036123400023"),
        600, 2000, D("0.0850"), ert_template_quantity_per_day=4,
    ),
    DemoItem(
        "PRP-CHG-3ML", "Chlorhexidine 2%/IPA 70% applicator 3 mL",
        "prep", "each", "lot", gtin14("0036123400024"),
        150, 500, D("1.8500"), ert_template_quantity_per_day=1,
    ),
    DemoItem(
        "PRP-PVI-001", "Povidone-iodine 10% prep pad",
        "prep", "each", "lot", gtin14("0036123400025"),
        100, 400, D("0.0900"),
    ),
    DemoItem(
        "PRP-CAP-IPA", "Disinfecting cap for needleless connector, 70% IPA",
        "prep", "each", "lot", gtin14("0036123400026"),
        200, 600, D("0.3200"),
    ),
    # --- Dressings, gauze, tape --------------------------------------------------------------
    DemoItem(
        "DRS-TSP-0203", "Transparent film dressing 2-3/8 x 2-3/4 in",
        "dressing", "each", "lot", gtin14("0036123400027"),
        150, 500, D("0.4500"), ert_template_quantity_per_day=1,
    ),
    DemoItem(
        "DRS-TSP-0405", "Transparent film dressing 4 x 4-3/4 in",
        "dressing", "each", "lot", gtin14("0036123400028"),
        60, 200, D("0.8500"),
    ),
    DemoItem(
        "DRS-TSP-CHG", "Transparent dressing with chlorhexidine gel pad 3-1/2 x 4-1/2 in",
        "dressing", "each", "lot", gtin14("0036123400029"),
        40, 120, D("6.5000"),
    ),
    DemoItem(
        "DRS-GZ-22", "Sterile gauze sponge 2 x 2 in, 8-ply, 2 per pack",
        "dressing", "pack", "lot", gtin14("0036123400030"),
        200, 600, D("0.0700"),
    ),
    DemoItem(
        "DRS-GZ-44", "Sterile gauze sponge 4 x 4 in, 12-ply, 2 per pack",
        "dressing", "pack", "lot", gtin14("0036123400031"),
        150, 500, D("0.1400"),
    ),
    DemoItem(
        "DRS-SEC-PIC", "Catheter securement device, adhesive, PICC/midline",
        "dressing", "each", "lot", gtin14("0036123400032"),
        40, 120, D("3.2000"),
    ),
    DemoItem(
        "DRS-TAPE-1", "Medical tape, hypoallergenic paper, 1 in x 10 yd",
        "dressing", "roll", "none", gtin14("0036123400033"),
        50, 200, D("0.4500"),
    ),
    DemoItem(
        "OTH-TQT-001", "Single-use tourniquet, latex-free, 1 x 18 in",
        "other", "each", "none", gtin14("0036123400034"),
        100, 400, D("0.1100"),
    ),
    # --- PPE -----------------------------------------------------------------------------------
    DemoItem(
        "PPE-GLV-NIT-M", "Nitrile exam gloves, powder-free, medium",
        "ppe", "pair", "none", gtin14("0036123400035"),
        300, 1000, D("0.1200"), ert_template_quantity_per_day=2,
    ),
    DemoItem(
        "PPE-GLV-NIT-L", "Nitrile exam gloves, powder-free, large",
        "ppe", "pair", "none", gtin14("0036123400036"),
        200, 600, D("0.1200"),
    ),
    DemoItem(
        "PPE-MSK-PRC", "Procedure mask, ear-loop, ASTM level 1",
        "ppe", "each", "none", gtin14("0036123400037"),
        100, 500, D("0.0900"),
    ),
    DemoItem(
        "OTH-UPD-2336", "Disposable underpad, 23 x 36 in",
        "other", "each", "none", gtin14("0036123400038"),
        150, 500, D("0.2800"), ert_template_quantity_per_day=1,
    ),
    # --- Sharps ------------------------------------------------------------------------------
    DemoItem(
        "SHP-CTR-1Q", "Sharps container 1 qt",
        "sharps", "each", "none", gtin14("0036123400039"),
        30, 100, D("1.9500"),
    ),
    DemoItem(
        "SHP-CTR-2G", "Sharps container 2 gal",
        "sharps", "each", "none", gtin14("0036123400040"),
        10, 40, D("4.7500"),
    ),
    # --- Cold chain --------------------------------------------------------------------------
    DemoItem(
        "CCH-SHP-48", "Insulated cold chain shipper, 2-8 C, 48 h qualified",
        "cold_chain", "each", "none", gtin14("0036123400041"),
        30, 100, D("14.5000"),
    ),
    DemoItem(
        "CCH-GEL-24", "Refrigerant gel pack, 24 oz",
        "cold_chain", "each", "none", gtin14("0036123400042"),
        60, 240, D("1.1000"),
    ),
    # --- Equipment (serialized) --------------------------------------------------------------
    DemoItem(
        "EQP-PMP-AMB", "Ambulatory infusion pump (CADD-style)",
        "pump", "each", "serial", gtin14("0036123400043"),
        2, 5, D("3250.0000"), daily_rate=D("12.5000"),
    ),
    DemoItem(
        "EQP-POLE-5W", "IV pole, 5-leg rolling base, 2 hooks",
        "pole", "each", "serial", gtin14("0036123400044"),
        2, 5, D("85.0000"), daily_rate=D("1.5000"),
    ),
)
# fmt: on

# Two or three lots per lot-tracked item; a few expire soon (5-45 days) to exercise FEFO,
# expiry alerts and write-offs. Quantities cover about 50 patients for a few weeks.
DEMO_LOTS: tuple[DemoLot, ...] = (
    DemoLot("ADM-SET-104", "L24A117", 20, 200, D("3.2100")),
    DemoLot("ADM-SET-104", "L24F032", 410, 300, D("3.2500")),
    DemoLot("ADM-SET-104", "L25B208", 760, 200, D("3.3100")),
    DemoLot("ADM-SET-037", "L24C441", 260, 120, D("1.9200")),
    DemoLot("ADM-SET-037", "L25A019", 690, 100, D("1.9900")),
    DemoLot("ADM-CAS-100", "L24D228", 300, 100, D("18.2500")),
    DemoLot("ADM-CAS-100", "L25C113", 720, 120, D("18.7500")),
    DemoLot("ADM-EXT-060", "L24E310", 340, 100, D("6.7500")),
    DemoLot("ADM-EXT-060", "L25B077", 650, 100, D("6.9000")),
    DemoLot("ADM-EXT-007", "L24H052", 380, 200, D("1.4200")),
    DemoLot("ADM-EXT-007", "L25D401", 820, 150, D("1.4800")),
    DemoLot("FLT-022-LPB", "L24B905", 10, 150, D("9.7000")),
    DemoLot("FLT-022-LPB", "L24K118", 280, 300, D("9.8500")),
    DemoLot("FLT-022-LPB", "L25C342", 540, 200, D("10.0500")),
    DemoLot("FLT-120-LIP", "L24G614", 330, 80, D("7.3500")),
    DemoLot("FLT-120-LIP", "L25E027", 700, 80, D("7.4500")),
    DemoLot("CTH-PIV-22", "L24C207", 45, 200, D("1.6200")),
    DemoLot("CTH-PIV-22", "L24J550", 520, 300, D("1.6500")),
    DemoLot("CTH-PIV-22", "L25D118", 880, 200, D("1.6900")),
    DemoLot("CTH-PIV-24", "L24F733", 450, 150, D("1.7000")),
    DemoLot("CTH-PIV-24", "L25A640", 790, 100, D("1.7400")),
    DemoLot("CTH-PIV-20", "L24E092", 390, 100, D("1.6300")),
    DemoLot("CTH-PIV-20", "L25B315", 830, 100, D("1.6700")),
    DemoLot("NDL-BFY-23", "L24D815", 30, 100, D("1.1800")),
    DemoLot("NDL-BFY-23", "L24L204", 610, 150, D("1.2000")),
    DemoLot("NDL-BFY-25", "L24H377", 470, 80, D("1.2500")),
    DemoLot("NDL-BFY-25", "L25C058", 860, 70, D("1.2900")),
    DemoLot("NDL-HUB-20", "L24G120", 240, 60, D("8.8500")),
    DemoLot("NDL-HUB-20", "L25A702", 600, 60, D("9.0500")),
    DemoLot("NDL-BLF-18", "L24F411", 500, 400, D("0.1750")),
    DemoLot("NDL-BLF-18", "L25B930", 900, 300, D("0.1800")),
    DemoLot("SYR-003-LL", "L24E618", 560, 300, D("0.1200")),
    DemoLot("SYR-003-LL", "L25C274", 880, 200, D("0.1250")),
    DemoLot("SYR-010-LL", "L24B336", 20, 150, D("0.1850")),
    DemoLot("SYR-010-LL", "L24K702", 620, 400, D("0.1900")),
    DemoLot("SYR-010-LL", "L25D045", 870, 200, D("0.1950")),
    DemoLot("SYR-050-LL", "L24H519", 530, 120, D("0.9400")),
    DemoLot("SYR-050-LL", "L25B162", 810, 100, D("0.9700")),
    DemoLot("CON-NLC-001", "L24F208", 410, 300, D("1.3300")),
    DemoLot("CON-NLC-001", "L25C509", 760, 200, D("1.3800")),
    DemoLot("FLS-NS-10", "L24C090", 45, 200, D("0.2800")),
    DemoLot("FLS-NS-10", "L24J311", 230, 600, D("0.2900")),
    DemoLot("FLS-NS-10", "L25A487", 420, 400, D("0.2950")),
    DemoLot("FLS-NS-05", "L24G226", 260, 300, D("0.2700")),
    DemoLot("FLS-NS-05", "L25B613", 480, 200, D("0.2750")),
    DemoLot("FLS-HEP-100", "L24D740", 5, 40, D("1.1200")),
    DemoLot("FLS-HEP-100", "L24K156", 300, 150, D("1.1500")),
    DemoLot("FLS-HEP-100", "L25C821", 520, 100, D("1.1900")),
    DemoLot("FLS-HEP-010", "L24H033", 280, 150, D("0.9500")),
    DemoLot("FLS-HEP-010", "L25A915", 540, 100, D("0.9800")),
    DemoLot("PRP-ALC-001", "L24A552", 10, 400, D("0.0820")),
    DemoLot("PRP-ALC-001", "L24I207", 640, 1200, D("0.0850")),
    DemoLot("PRP-ALC-001", "L25C146", 900, 800, D("0.0870")),
    DemoLot("PRP-CHG-3ML", "L24E301", 210, 300, D("1.8200")),
    DemoLot("PRP-CHG-3ML", "L25B728", 600, 200, D("1.8800")),
    DemoLot("PRP-PVI-001", "L24F664", 450, 200, D("0.0900")),
    DemoLot("PRP-PVI-001", "L25D213", 820, 200, D("0.0920")),
    DemoLot("PRP-CAP-IPA", "L24G502", 300, 400, D("0.3100")),
    DemoLot("PRP-CAP-IPA", "L25C037", 690, 200, D("0.3250")),
    DemoLot("DRS-TSP-0203", "L24B118", 20, 100, D("0.4400")),
    DemoLot("DRS-TSP-0203", "L24J845", 720, 300, D("0.4500")),
    DemoLot("DRS-TSP-0203", "L25D390", 900, 200, D("0.4650")),
    DemoLot("DRS-TSP-0405", "L24H271", 610, 120, D("0.8500")),
    DemoLot("DRS-TSP-0405", "L25A604", 860, 80, D("0.8700")),
    DemoLot("DRS-TSP-CHG", "L24E177", 250, 60, D("6.4000")),
    DemoLot("DRS-TSP-CHG", "L25B449", 580, 60, D("6.6000")),
    DemoLot("DRS-GZ-22", "L24C823", 700, 400, D("0.0700")),
    DemoLot("DRS-GZ-22", "L25A356", 880, 200, D("0.0720")),
    DemoLot("DRS-GZ-44", "L24F519", 660, 300, D("0.1380")),
    DemoLot("DRS-GZ-44", "L25C702", 890, 200, D("0.1420")),
    DemoLot("DRS-SEC-PIC", "L24G048", 420, 60, D("3.1500")),
    DemoLot("DRS-SEC-PIC", "L25B581", 750, 60, D("3.2500")),
)

# Receipts for untracked consumables: (sku, quantity, unit_cost), two per item.
DEMO_UNTRACKED_RECEIPTS: tuple[tuple[str, int, Decimal], ...] = (
    ("DRS-TAPE-1", 120, D("0.4400")),
    ("DRS-TAPE-1", 100, D("0.4600")),
    ("OTH-TQT-001", 200, D("0.1100")),
    ("OTH-TQT-001", 200, D("0.1150")),
    ("PPE-GLV-NIT-M", 1000, D("0.1150")),
    ("PPE-GLV-NIT-M", 800, D("0.1250")),
    ("PPE-GLV-NIT-L", 500, D("0.1200")),
    ("PPE-GLV-NIT-L", 400, D("0.1230")),
    ("PPE-MSK-PRC", 500, D("0.0880")),
    ("PPE-MSK-PRC", 300, D("0.0920")),
    ("OTH-UPD-2336", 500, D("0.2700")),
    ("OTH-UPD-2336", 400, D("0.2850")),
    ("SHP-CTR-1Q", 60, D("1.9500")),
    ("SHP-CTR-1Q", 50, D("1.9900")),
    ("SHP-CTR-2G", 20, D("4.7000")),
    ("SHP-CTR-2G", 20, D("4.8500")),
    ("CCH-SHP-48", 60, D("14.2500")),
    ("CCH-SHP-48", 40, D("14.7500")),
    ("CCH-GEL-24", 200, D("1.0800")),
    ("CCH-GEL-24", 150, D("1.1200")),
)

# Serialized equipment: (sku, serial). 12 ambulatory pumps and 12 IV poles.
DEMO_SERIALS: tuple[tuple[str, str], ...] = tuple(
    ("EQP-PMP-AMB", f"AIP-2024-{n:04d}") for n in range(1, 13)
) + tuple(("EQP-POLE-5W", f"POLE-{n:04d}") for n in range(1, 13))

del D
