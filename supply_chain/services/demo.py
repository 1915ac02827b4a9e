"""The demo scenario: leafy greens from two farms to two shops, with an inspection failure and a recall.

Everything goes through the same services the app uses, so the demo data is real chain-anchored data.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text

from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots, orgs, recalls
from supply_chain.services.lots import NewLot
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up
from supply_chain.services.verify import verify_all
from supply_chain.store.db import make_engine
from supply_chain.store.models import Base, Organisation

DEMO_PASSWORD = "lotline-demo"


@dataclass(frozen=True)
class DemoOrg:
    key: str
    name: str
    roles: tuple[str, ...]
    prefix: str
    email: str
    person: str


DEMO_ORGS = (
    DemoOrg(
        "regulator", "Food Safety Authority", ("regulator", "admin"), "", "regulator@demo.lotline", "Rosa Regulator"
    ),
    DemoOrg("farm_a", "Green Valley Farm", ("producer",), "0614141", "farmer@demo.lotline", "Frank Farmer"),
    DemoOrg("farm_b", "Sunrise Fields", ("producer",), "0614142", "grower@demo.lotline", "Gina Grower"),
    DemoOrg("packer", "Coastal Packing Co", ("processor",), "0614143", "packer@demo.lotline", "Paul Packer"),
    DemoOrg("processor", "FreshCut Salads", ("processor",), "0614144", "processor@demo.lotline", "Priya Processor"),
    DemoOrg(
        "distributor", "ColdChain Logistics", ("distributor",), "0614145", "distributor@demo.lotline", "Dan Distributor"
    ),
    DemoOrg("retailer_a", "Corner Market", ("retailer",), "0614146", "shop@demo.lotline", "Sam Shopkeeper"),
    DemoOrg("retailer_b", "City Grocer", ("retailer",), "0614147", "grocer@demo.lotline", "Gail Grocer"),
    DemoOrg("inspector", "AgriCert Labs", ("inspector",), "0614148", "inspector@demo.lotline", "Ian Inspector"),
)


def gtin(prefix: str, item: str) -> str:
    """A GTIN-14 (indicator 0) with a correct check digit from a company prefix and item reference."""
    body = "0" + prefix + item
    return body + str(gs1_check_digit(body))


def gln(prefix: str, location: str) -> str:
    body = prefix + location
    return body + str(gs1_check_digit(body))


def reset_instance(settings: Settings) -> None:
    """Remove the demo's database and embedded chain state (what `lotline demo --reset` starts from)."""
    if settings.database_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (settings.home / f"lotline.db{suffix}").unlink(missing_ok=True)
    else:
        engine = make_engine(settings.database_url)
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            if sa_inspect(conn).has_table("alembic_version"):
                conn.execute(text("DROP TABLE alembic_version"))
        engine.dispose()
    for folder in ("chain", "documents"):
        shutil.rmtree(settings.home / folder, ignore_errors=True)


def seed(runtime: Runtime, progress: Callable[[str], None] = lambda _m: None) -> dict[str, Organisation]:
    """Build the scenario. Refuses (with a message) to seed twice into the same instance."""
    catch_up(runtime)
    with runtime.ctx() as ctx:
        if ctx.session.scalars(select(Organisation).where(Organisation.name == DEMO_ORGS[0].name)).first():
            progress("demo data already present (use `lotline demo --reset` to start over)")
            return {}
    today = datetime.now(UTC).date()
    day = {n: (today - timedelta(days=n)).isoformat() for n in range(0, 12)}

    def at(days_ago: int, hour: int) -> str:
        return (
            datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
        ).isoformat()

    with runtime.ctx() as ctx:
        progress("onboarding organisations and users")
        o: dict[str, Organisation] = {}
        o["regulator"] = orgs.onboard(ctx, None, DEMO_ORGS[0].name, list(DEMO_ORGS[0].roles))
        for spec in DEMO_ORGS[1:]:
            o[spec.key] = orgs.onboard(ctx, o["regulator"], spec.name, list(spec.roles), spec.prefix)
        for spec in DEMO_ORGS:
            orgs.add_user(ctx, o[spec.key], spec.email, spec.person, DEMO_PASSWORD)
        ctx.session.commit()

        progress("registering sites and products")
        site = {}
        places = {
            "farm_a": ("00011", "Green Valley Farm, Field 7", "farm", "1200 River Rd, Salinas, CA", 36.6777, -121.6555),
            "farm_b": ("00012", "Sunrise Fields, North Block", "farm", "88 Sunrise Ln, Yuma, AZ", 32.6927, -114.6277),
            "packer": (
                "00013",
                "Coastal Packing house",
                "packhouse",
                "5 Harbor Way, Watsonville, CA",
                36.9107,
                -121.7569,
            ),
            "processor": (
                "00014",
                "FreshCut Salads plant",
                "plant",
                "400 Industrial Pkwy, Gilroy, CA",
                37.0058,
                -121.5683,
            ),
            "distributor": (
                "00015",
                "ColdChain DC West",
                "warehouse",
                "77 Logistics Dr, Stockton, CA",
                37.9577,
                -121.2908,
            ),
            "retailer_a": ("00016", "Corner Market, Main St", "store", "12 Main St, Palo Alto, CA", 37.4419, -122.1430),
            "retailer_b": (
                "00017",
                "City Grocer, Market St",
                "store",
                "900 Market St, San Francisco, CA",
                37.7840,
                -122.4075,
            ),
            "inspector": ("00018", "AgriCert Labs", "lab", "3 Science Ct, Davis, CA", 38.5449, -121.7405),
        }
        for key, (ref, name, kind, address, lat, lon) in places.items():
            prefix = next(s.prefix for s in DEMO_ORGS if s.key == key)
            site[key] = orgs.register_location(ctx, o[key], gln(prefix, ref), name, address, lat, lon, kind)
        romaine = orgs.register_product(
            ctx,
            o["farm_a"],
            gtin("0614141", "00001"),
            "Romaine lettuce, whole heads",
            "leafy greens",
            True,
            "kg",
            commodity="romaine lettuce",
        )
        spinach = orgs.register_product(
            ctx,
            o["farm_b"],
            gtin("0614142", "00002"),
            "Baby spinach",
            "leafy greens",
            True,
            "kg",
            commodity="spinach",
            variety="Baby leaf",
        )
        mix = orgs.register_product(
            ctx, o["processor"], gtin("0614144", "00003"), "Garden salad mix 250 g", "fresh-cut salads", True, "kg"
        )
        ctx.session.commit()

        progress("harvesting at two farms")
        lot_a = lots.create_lot(
            ctx,
            o["farm_a"],
            romaine.gtin,
            "GV-ROM-2611A",
            EventKind.HARVESTING,
            {
                "location_gln": site["farm_a"].gln,
                "harvest_date": day[10],
                "commodity": "romaine lettuce",
                "variety": "Parris Island",
                "field_name": "Field 7",
            },
            "2000",
            "kg",
        )
        lot_c = lots.create_lot(
            ctx,
            o["farm_a"],
            romaine.gtin,
            "GV-ROM-2611C",
            EventKind.HARVESTING,
            {
                "location_gln": site["farm_a"].gln,
                "harvest_date": day[10],
                "commodity": "romaine lettuce",
                "field_name": "Field 9",
            },
            "800",
            "kg",
        )
        lot_b = lots.create_lot(
            ctx,
            o["farm_b"],
            spinach.gtin,
            "SF-SPN-2611B",
            EventKind.HARVESTING,
            {
                "location_gln": site["farm_b"].gln,
                "harvest_date": day[10],
                "commodity": "spinach",
                "variety": "Baby leaf",
            },
            "1500",
            "kg",
        )

        def ship(lot, src, dst, date, ref):  # noqa: ANN001, ANN202
            lots.offer_custody(
                ctx,
                o[src],
                lot,
                o[dst],
                {
                    "from_gln": site[src].gln,
                    "to_gln": site[dst].gln,
                    "ship_date": date,
                    "reference_document_type": "bill of lading",
                    "reference_document_number": ref,
                    "tlc_source_gln": site["farm_a"].gln
                    if lot.gtin == romaine.gtin
                    else (site["farm_b"].gln if lot.gtin == spinach.gtin else site["processor"].gln),
                },
            )

        def receive(lot, src, dst, date, ref):  # noqa: ANN001, ANN202
            lots.accept_custody(
                ctx,
                o[dst],
                lot,
                {
                    "from_gln": site[src].gln,
                    "to_gln": site[dst].gln,
                    "receive_date": date,
                    "reference_document_type": "bill of lading",
                    "reference_document_number": ref,
                },
            )

        progress("shipping to the packer; cooling and initial packing")
        for lot, farm, ref in (
            (lot_a, "farm_a", "BOL-GV-1001"),
            (lot_c, "farm_a", "BOL-GV-1002"),
            (lot_b, "farm_b", "BOL-SF-2001"),
        ):
            ship(lot, farm, "packer", day[10], ref)
            receive(lot, farm, "packer", day[9], ref)
            lots.record_events(
                ctx,
                o["packer"],
                lot,
                [
                    (
                        EventKind.COOLING,
                        {
                            "location_gln": site["packer"].gln,
                            "cooling_date": day[9],
                            "harvest_location_gln": site[farm].gln,
                        },
                    ),
                    (
                        EventKind.INITIAL_PACKING,
                        {
                            "location_gln": site["packer"].gln,
                            "packing_date": day[9],
                            "harvest_location_gln": site[farm].gln,
                            "harvest_date": day[10],
                            "product_description": lot.product.name,
                        },
                    ),
                ],
            )

        progress("inspections: one pass, one fail with hold")
        lots.inspect(
            ctx,
            o["inspector"],
            lot_b,
            "pass",
            {
                "inspection_date": day[8],
                "inspector_name": "Ian Inspector",
                "inspection_body": "AgriCert Labs",
                "standard": "FDA BAM Ch. 4 (E. coli)",
                "findings": "No pathogens detected in 5 samples",
            },
            certificate=("spinach-lab-report.pdf", "application/pdf", demo_pdf("Lab report SF-SPN-2611B: PASS")),
        )
        lots.inspect(
            ctx,
            o["inspector"],
            lot_c,
            "fail",
            {
                "inspection_date": day[8],
                "inspector_name": "Ian Inspector",
                "inspection_body": "AgriCert Labs",
                "standard": "ISO 11290-1 (Listeria)",
                "findings": "Listeria monocytogenes in 1 of 5 samples",
            },
            certificate=("romaine-lab-report.pdf", "application/pdf", demo_pdf("Lab report GV-ROM-2611C: FAIL")),
        )

        progress("to the processor; transformation into salad mix")
        ship(lot_a, "packer", "processor", day[8], "BOL-CP-3001")
        receive(lot_a, "packer", "processor", day[7], "BOL-CP-3001")
        ship(lot_b, "packer", "processor", day[8], "BOL-CP-3002")
        receive(lot_b, "packer", "processor", day[7], "BOL-CP-3002")
        mix_1, mix_2 = lots.transform(
            ctx,
            o["processor"],
            [
                NewLot(mix.gtin, "FC-MIX-001", "1000", "kg", [(lot_a, "600"), (lot_b, "400")]),
                NewLot(mix.gtin, "FC-MIX-002", "500", "kg", [(lot_a, "300"), (lot_b, "200")]),
            ],
            site["processor"].gln,
            day[6],
            {"product_description": "Garden salad mix 250 g bags"},
        )

        progress("cold chain: distributor carries and logs temperatures")
        for lot, ref in ((mix_1, "BOL-FC-4001"), (mix_2, "BOL-FC-4002")):
            ship(lot, "processor", "distributor", day[6], ref)
            readings = [
                {
                    "taken_at": at(6, 8)
                    if i == 0
                    else (datetime.fromisoformat(at(6, 8)) + timedelta(minutes=30 * i)).isoformat(),
                    "temperature_c": str(round(2.5 + (i % 5) * 0.3, 1)),
                }
                for i in range(24)
            ]
            if lot is mix_2:
                readings[14]["temperature_c"] = "7.4"  # the trailer door left open: a cold-chain excursion
            receive(lot, "processor", "distributor", day[5], ref)
            # the trip's log, anchored once the distributor holds the lot (a receiver records nothing before)
            lots.anchor_readings(
                ctx, o["distributor"], lot, readings, sensor_id="LOGGER-77", location_gln=site["distributor"].gln
            )

        progress("to two retailers")
        ship(mix_1, "distributor", "retailer_a", day[4], "BOL-CC-5001")
        receive(mix_1, "distributor", "retailer_a", day[3], "BOL-CC-5001")
        ship(mix_2, "distributor", "retailer_b", day[4], "BOL-CC-5002")
        receive(mix_2, "distributor", "retailer_b", day[3], "BOL-CC-5002")

        progress("regulator recalls a farm lot: draft, review, issue; every holder is notified")
        rosa = o["regulator"].users[0]
        draft = recalls.create_draft(
            ctx,
            o["regulator"],
            rosa,
            lot_a,
            {
                "reason": "Listeria monocytogenes found in a retail sample",
                "recall_class": "I",
                "depth": "consumer",
                "instructions": "Do not eat. Throw the product away or return it to the store for a refund.",
                "public_notice": True,
                "contact": "recalls@foodsafety.example",
            },
        )
        recalls.submit_for_review(ctx, o["regulator"], rosa, draft)
        recall = recalls.issue(ctx, o["regulator"], rosa, draft, lot_a.lot_code)
        ctx.session.commit()
        progress("City Grocer acknowledges the recall")
        recalls.acknowledge(
            ctx,
            o["retailer_b"],
            o["retailer_b"].users[0],
            recall,
            {"quantity_removed": "420", "quantity_destroyed": "80", "note": "Pulled from the shelves at 8 am."},
        )
        ctx.session.commit()

        progress("verifying every lot against the chain")
        results = verify_all(ctx)
        verified = sum(r.state == "verified" for r in results)
        progress(
            f"done: {len(results)} lots, {verified} verified; sign in with any demo user, password {DEMO_PASSWORD!r}"
        )
        return o


def demo_pdf(title: str) -> bytes:
    """A tiny valid one-page PDF with a line of text (a stand-in certificate the demo can attach)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({title}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
