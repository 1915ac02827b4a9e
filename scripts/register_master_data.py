"""Register, through the Lotline API, the master data an EPCIS document references, so that it can be captured.

    PYTHONPATH=. python scripts/register_master_data.py DOCUMENT --api https://lotline.example/api/v1 \\
        --admin-token llt_... [--organisation "Partner Ltd"] [--roles producer,processor] [--prefix-length 7]

DOCUMENT is EPCIS 2.0 JSON-LD, or EPCIS 2.0/1.2 XML. Read from it: every GS1 company prefix its identifiers
carry (read by ``supply_chain.domain.identifiers.parse_gs1_uri``: SGTIN, LGTIN, SGLN, PGLN, SSCC and GRAI URNs
name the prefix; a Digital Link does not, so its prefix is one of those seen in URNs, or its first
``--prefix-length`` digits), every GTIN (epcList, quantity lists, parent
and child identifiers) and every GLN (readPoint, bizLocation, source and destination). Then, with the token of
a regulator or admin (``--admin-token``):

1. ``POST /organisations``: one organisation holding all those prefixes, with ``--roles`` (the answer carries
   its first write token); or, with ``--token`` of an existing organisation, ``POST
   /organisations/{id}/prefixes`` for each prefix it lacks;
2. ``POST /products`` for each GTIN and ``POST /locations`` for each GLN not registered yet, as that
   organisation (names from the document's header master data where it has them).

Prints a JSON report (organisation, token, what was registered, what already was) on stdout; exit code 0, or
2 when the API refused something (the refusal is in the report).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.identifiers import parse_gs1_uri
from supply_chain.services.epcis import xml as epcis_xml

Api = Callable[[str, str, str, Any], tuple[int, Any]]
"""(method, path under /api/v1, bearer token, JSON body or None) -> (status, JSON answer)."""

_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_NAME = ("urn:epcglobal:cbv:mda#name", "cbvmda:name", "https://gs1.org/voc/name")


@dataclass
class References:
    prefixes: set[str] = field(default_factory=set)
    gtins: set[str] = field(default_factory=set)
    glns: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)  # GLN -> name from the header's master data
    unparsed: list[str] = field(default_factory=list)
    _link_keys: list[tuple[str, str]] = field(default_factory=list)  # (kind, key) from Digital Links


def read_document(raw: bytes) -> dict[str, Any]:
    """The JSON-LD document of ``raw`` (JSON, or EPCIS XML converted as the capture endpoint does)."""
    if raw.lstrip().startswith(b"<"):
        return epcis_xml.document_from_xml(raw)
    return json.loads(raw)


def _identifiers(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, identifier) of every product and location identifier of the document's events."""
    for event in (document.get("epcisBody") or {}).get("eventList") or []:
        for name in _EPC_LISTS:
            for epc in event.get(name) or []:
                yield "epc", epc
        if event.get("parentID"):
            yield "epc", event["parentID"]
        for name in _QUANTITY_LISTS:
            for quantity in event.get(name) or []:
                yield "epc", quantity.get("epcClass")
        for name in ("readPoint", "bizLocation"):
            if isinstance(event.get(name), Mapping):
                yield "place", event[name].get("id")
        for name, key in (("sourceList", "source"), ("destinationList", "destination")):
            for item in event.get(name) or []:
                yield "place", item.get(key)


def references(document: Mapping[str, Any], prefix_length: int = 7) -> References:
    """The company prefixes, GTINs and GLNs ``document`` names (see the module's docstring)."""
    refs = References()
    for _, uri in _identifiers(document):
        if isinstance(uri, str):
            _add(refs, uri)
    for vocabulary in ((document.get("epcisHeader") or {}).get("epcisMasterData") or {}).get("vocabularyList") or []:
        for element in vocabulary.get("vocabularyElementList") or []:
            gln = _add(refs, element.get("id") or "")
            for attribute in element.get("attributes") or []:
                if gln and attribute.get("id") in _NAME and isinstance(attribute.get("attribute"), str):
                    refs.names[gln] = attribute["attribute"]
    for kind, key in refs._link_keys:  # Digital Links: the prefix is one seen in a URN, else the first digits
        digits = key[1:] if kind == "gtin" else key
        known = [p for p in refs.prefixes if digits.startswith(p)]
        refs.prefixes.add(max(known, key=len) if known else digits[:prefix_length])
    return refs


def _add(refs: References, uri: str) -> str | None:
    """Record what ``uri`` names (read by the domain's one GS1 identifier reader); the GLN when it names one."""
    if not uri.startswith(("urn:epc:", "http://", "https://")):
        return None
    try:
        key = parse_gs1_uri(uri.replace("urn:epc:idpat:sgtin:", "urn:epc:id:sgtin:").replace(".*", ".0"))
    except InvalidInput:
        refs.unparsed.append(uri)
        return None
    if key.company_prefix:
        refs.prefixes.add(key.company_prefix)
    if key.scheme in ("sgtin", "lgtin", "gtin"):
        refs.gtins.add(key.key)
    elif key.scheme in ("sgln", "gln", "pgln"):
        refs.glns.add(key.key)
    if key.company_prefix is None and key.scheme not in ("sscc", "grai"):
        refs._link_keys.append(("gtin" if key.scheme in ("sgtin", "lgtin", "gtin") else "gln", key.key))
    return key.key if key.scheme in ("sgln", "gln", "pgln") else None


# ------------------------------------------------------------------ registering through the API


def register(
    api: Api,
    document: Mapping[str, Any],
    *,
    admin_token: str,
    token: str | None = None,
    organisation: str | None = None,
    roles: list[str] | None = None,
    prefix_length: int = 7,
) -> dict[str, Any]:
    """Register what ``document`` references (module docstring); the report. ``token`` names an existing
    organisation to register under; otherwise one is onboarded."""
    refs = references(document, prefix_length)
    prefixes = _without_overlaps(refs.prefixes)
    report: dict[str, Any] = {"prefixes": prefixes, "products": {}, "locations": {}, "refused": []}
    if refs.unparsed:
        report["unparsed"] = sorted(set(refs.unparsed))
    if token is None:
        status, body = api(
            "POST",
            "/organisations",
            admin_token,
            {
                "name": organisation or f"EPCIS partner {'-'.join(prefixes) or 'without prefix'}",
                "roles": roles or ["producer", "processor"],
                "gs1_company_prefixes": prefixes,
            },
        )
        if status != 201:
            report["refused"].append({"organisation": body})
            return report
        org, token = body["organisation"], body["token"]["token"]
    else:
        status, me = api("GET", "/me", token, None)
        if status != 200:
            report["refused"].append({"token": me})
            return report
        org = me["organisation"]
        for prefix in prefixes:
            if prefix in (org.get("gs1_company_prefixes") or []):
                continue
            status, body = api(
                "POST", f"/organisations/{org['id']}/prefixes", admin_token, {"gs1_company_prefix": prefix}
            )
            if status != 201:
                report["refused"].append({"prefix": prefix, "answer": body})
            else:
                org = body
    report["organisation"], report["token"] = org, token
    for gtin in sorted(refs.gtins):
        status, body = api("POST", "/products", token, {"gtin": gtin, "name": f"Product {gtin}"})
        report["products"][gtin] = _outcome(status, body, report, gtin)
    for gln in sorted(refs.glns):
        name = refs.names.get(gln) or f"Location {gln}"
        status, body = api("POST", "/locations", token, {"gln": gln, "name": name[:200]})
        report["locations"][gln] = _outcome(status, body, report, gln)
    return report


def _without_overlaps(prefixes: set[str]) -> list[str]:
    """Sorted prefixes, a longer one dropped where a shorter one begins it (one prefix covers both)."""
    out: list[str] = []
    for prefix in sorted(prefixes, key=len):
        if prefix.isdigit() and not any(prefix.startswith(p) for p in out):
            out.append(prefix)
    return sorted(out)


def _outcome(status: int, body: Any, report: dict[str, Any], key: str) -> str:
    if status == 201:
        return "registered"
    if status == 409 and isinstance(body, Mapping) and "already registered" in str(body.get("message")):
        return "already registered"
    report["refused"].append({key: body})
    return f"refused ({status})"


def http_api(base: str) -> Api:
    """An ``Api`` speaking HTTP to ``base`` (e.g. https://lotline.example/api/v1)."""

    def call(method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            base.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - the operator's own URL
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read() or b"null")

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("document", type=Path)
    parser.add_argument("--api", required=True, help="the API's base URL, ending in /api/v1")
    parser.add_argument("--admin-token", required=True, help="a write token of a regulator or admin")
    parser.add_argument("--token", help="register under this organisation (its write token) instead of a new one")
    parser.add_argument("--organisation", help="name of the organisation to onboard")
    parser.add_argument("--roles", default="producer,processor", help="its roles, comma-separated")
    parser.add_argument("--prefix-length", type=int, default=7, help="company prefix length for Digital Links")
    args = parser.parse_args(argv)
    try:
        document = read_document(args.document.read_bytes())
    except (InvalidInput, ValueError) as exc:
        print(f"{args.document}: {exc}", file=sys.stderr)
        return 2
    report = register(
        http_api(args.api),
        document,
        admin_token=args.admin_token,
        token=args.token,
        organisation=args.organisation,
        roles=[r.strip() for r in args.roles.split(",") if r.strip()],
        prefix_length=args.prefix_length,
    )
    print(json.dumps(report, indent=2))
    return 2 if report["refused"] else 0


if __name__ == "__main__":
    sys.exit(main())
