"""Organisations, users, products and locations; deploying the ledger and onboarding members."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select

from supply_chain.chain.connect import fund
from supply_chain.chain.keys import new_account
from supply_chain.chain.ledger import ROLE_NAMES, Call, Ledger
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, LotlineError, NotFound
from supply_chain.domain.identifiers import gln_has_prefix, gtin_has_prefix, parse_gln, parse_gtin
from supply_chain.domain.policy import CREATOR_ROLES, ONBOARDING_ROLES
from supply_chain.domain.text import check_text
from supply_chain.services import sessions
from supply_chain.services.language import LANGUAGES
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import ChainDeployment, CompanyPrefix, Location, Organisation, Product, User

log = logging.getLogger(__name__)

OPERATOR_NAME = "Lotline operator"
# Enough test ether for a lifetime of transactions on a chain where gas costs something.
FUNDING_WEI = 10**24
_hasher = PasswordHasher()
# A hash of a random password, checked when the e-mail is unknown so that timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("lotline-no-such-user")


def signer(ctx: Ctx, org: Organisation) -> LocalAccount:
    """The organisation's own key, decrypted with the installation's key-encryption key."""
    return ctx.runtime.keyring.account(org)


def _new_org(ctx: Ctx, name: str, roles: list[str], prefix: str | None) -> tuple[Organisation, LocalAccount]:
    name = (name or "").strip()
    if not 2 <= len(name) <= 200:
        raise InvalidInput("organisation name must be 2-200 characters", field="name")
    check_text(name, "name")
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown or not roles:
        raise InvalidInput(
            f"roles must be one or more of {', '.join(ROLE_NAMES)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            field="roles",
        )
    if prefix is not None and prefix != "":
        check_prefix(prefix, "gs1_company_prefix")
    if ctx.session.scalar(select(func.count()).select_from(Organisation).where(Organisation.name == name)):
        raise Conflict(f"an organisation named {name!r} already exists", field="name")
    account = new_account()
    encrypted_key, kek_id = ctx.runtime.keyring.seal(account)
    org = Organisation(
        name=name,
        roles=sorted(set(roles)),
        chain_address=account.address,
        encrypted_key=encrypted_key,
        key_encryption_id=kek_id,
        gs1_company_prefix=prefix or None,
        extra_prefixes=[],  # loaded (empty) from the start: read after its session ends, it needs no query
    )
    return org, account


def operator(ctx: Ctx) -> Organisation | None:
    return ctx.session.scalars(select(Organisation).where(Organisation.name == OPERATOR_NAME)).first()


def deploy(ctx: Ctx) -> ChainDeployment:
    """Deploy the LotLedger on the configured chain, once; the operator organisation becomes its admin."""
    runtime = ctx.runtime
    chain = runtime.chain
    chain_id = chain.w3.eth.chain_id
    existing = ctx.session.scalars(
        select(ChainDeployment).where(
            ChainDeployment.chain_id == chain_id, ChainDeployment.contract_name == "LotLedger"
        )
    ).first()
    if existing is not None:
        if Ledger(chain.w3, existing.address).is_deployed():
            return existing
        raise Conflict(
            f"this database records a LotLedger at {existing.address} on chain {chain_id}, but the chain has no "
            "code there (was the chain reset?); use a fresh LOTLINE_HOME/database for a new chain"
        )
    org = operator(ctx)
    if org is None:
        org, account = _new_org(ctx, OPERATOR_NAME, ["admin"], None)
        ctx.session.add(org)
        ctx.session.flush()
    else:
        account = signer(ctx, org)
    fund(chain, account.address, FUNDING_WEI)
    ledger, block = Ledger.deploy(chain.w3, account, account.address)
    deployment = ChainDeployment(
        chain_id=chain_id, contract_name="LotLedger", address=ledger.address, block_number=block
    )
    ctx.session.add(deployment)
    ctx.session.commit()
    runtime.forget_ledger()
    return deployment


def onboard(
    ctx: Ctx,
    actor: Organisation | None,
    name: str,
    roles: list[str],
    gs1_company_prefix: str | None = None,
    more_prefixes: Sequence[str] = (),
) -> Organisation:
    """Create an organisation with a fresh key, fund it and grant its roles on chain (signed by an admin),
    with its GS1 company prefixes (``gs1_company_prefix`` first, then ``more_prefixes``) registered to its key.

    `actor` must hold the admin role, or the regulator role (the operator then signs); `None` means the
    operator (CLI and demo set-up).
    """
    admin = _onboarding_signer(ctx, actor)
    prefixes = [p for p in (gs1_company_prefix, *more_prefixes) if p]
    field = "gs1_company_prefixes" if more_prefixes else "gs1_company_prefix"
    for prefix in prefixes:
        check_prefix(prefix, field)
        _refuse_taken_prefix(ctx, prefix, field)
    overlapping = [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)]
    if overlapping or len(set(prefixes)) != len(prefixes):
        raise InvalidInput("GS1 company prefixes must differ and none may begin another", field=field)
    org, account = _new_org(ctx, name, roles, prefixes[0] if prefixes else None)
    ledger = ctx.ledger
    fund(ctx.runtime.chain, account.address, FUNDING_WEI)
    calls = [Call.grant_role(r, account.address) for r in org.roles]
    # Only this organisation may then create lots of GTINs under its prefixes (LotLedger.createLot).
    calls += [Call.register_company_prefix(prefix, account.address) for prefix in prefixes]
    ledger.multicall(signer(ctx, admin), calls)
    ctx.session.add(org)
    ctx.session.flush()
    for prefix in prefixes[1:]:
        ctx.session.add(CompanyPrefix(organisation=org, prefix=prefix))
    ctx.session.flush()
    return org


def _onboarding_signer(ctx: Ctx, actor: Organisation | None) -> Organisation:
    """Who signs onboarding and prefix registrations for ``actor``: an admin itself, the operator for a
    regulator (``ONBOARDING_ROLES``) or for set-up (``None``)."""
    if actor is not None:
        refusal = _oversight_refusal(actor, "onboard")
        if refusal is not None:
            raise refusal
        return _role_admin(ctx, actor)
    admin = operator(ctx)
    if admin is None:
        raise Conflict("no operator organisation yet: run `lotline deploy` first")
    return admin


def check_prefix(prefix: str, field: str = "gs1_company_prefix") -> str:
    """``prefix`` when it is a GS1 company prefix (6-12 digits); InvalidInput naming ``field`` otherwise."""
    if not isinstance(prefix, str) or not prefix.isdigit() or not 6 <= len(prefix) <= 12:
        raise InvalidInput(f"GS1 company prefix must be 6-12 digits, got {prefix!r}", field=field)
    return prefix


def prefix_holder(ctx: Ctx, prefix: str) -> Organisation | None:
    """The organisation holding ``prefix`` or a prefix that begins it or that it begins (GTINs and GLNs under
    either would be ambiguous), if any."""
    for org in ctx.session.scalars(select(Organisation).where(Organisation.gs1_company_prefix.is_not(None))):
        held = org.gs1_company_prefix or ""
        if held.startswith(prefix) or prefix.startswith(held):
            return org
    for row in ctx.session.scalars(select(CompanyPrefix)):
        if row.prefix.startswith(prefix) or prefix.startswith(row.prefix):
            return row.organisation
    return None


def _refuse_taken_prefix(ctx: Ctx, prefix: str, field: str, org: Organisation | None = None) -> None:
    holder = prefix_holder(ctx, prefix)
    if holder is not None and (org is None or holder.id != org.id):
        raise Conflict(
            f"GS1 company prefix {prefix} overlaps one held by {holder.name}", field=field, code="prefix_taken"
        )
    if holder is not None:
        raise Conflict(f"{holder.name} already holds GS1 company prefix {prefix}", field=field, code="prefix_taken")


def add_company_prefix(ctx: Ctx, actor: Organisation, org: Organisation, prefix: str) -> list[str]:
    """Give ``org`` a further GS1 company prefix: registered on chain to its key (signed by an admin), so only
    it may create lots of GTINs under it, and accepted for its products and locations. ``actor`` needs the
    admin or regulator role; a prefix overlapping one already held (by anyone) is a Conflict. Returns all of
    ``org``'s prefixes."""
    admin = _onboarding_signer(ctx, actor)
    check_prefix(prefix, "gs1_company_prefix")
    _refuse_taken_prefix(ctx, prefix, "gs1_company_prefix", org)
    ctx.ledger.register_company_prefix(signer(ctx, admin), prefix, org.chain_address)
    if not org.gs1_company_prefix:
        org.gs1_company_prefix = prefix  # the first is kept on the organisation
    else:
        ctx.session.add(CompanyPrefix(organisation=org, prefix=prefix))
    ctx.session.flush()
    ctx.session.refresh(org, ["extra_prefixes"])
    return org.company_prefixes


def set_roles(ctx: Ctx, actor: Organisation, org: Organisation, roles: list[str]) -> Organisation:
    """Grant and revoke roles so that `org` holds exactly `roles`, in one transaction signed by an admin."""
    if "admin" not in actor.roles:
        raise Forbidden(f"{actor.name} cannot change roles: the admin role is needed")
    wanted = sorted(set(roles))
    unknown = [r for r in wanted if r not in ROLE_NAMES]
    if unknown or not wanted:
        raise InvalidInput(f"roles must be one or more of {', '.join(ROLE_NAMES)}", field="roles")
    if org.id == actor.id and "admin" not in wanted:
        raise InvalidInput("an organisation cannot take the admin role from itself", field="roles")
    if org.suspended:
        raise Conflict(
            f"{org.name} is suspended: reinstate it first (it gets back the roles it held)",
            field="roles",
            code="organisation_suspended",
        )
    _sync_roles(ctx, actor, org, org.roles, wanted)
    return org


def _sync_roles(ctx: Ctx, admin: Organisation, org: Organisation, held: list[str], wanted: list[str]) -> None:
    """Grant and revoke on chain, in one transaction signed by `admin`, so that `org` goes from `held` to
    exactly `wanted`; then record `wanted` as its roles."""
    calls = [Call.grant_role(r, org.chain_address) for r in wanted if r not in held]
    calls += [Call.revoke_role(r, org.chain_address) for r in held if r not in wanted]
    if calls:
        ctx.ledger.multicall(signer(ctx, admin), calls)
    if calls or list(org.roles) != list(wanted):
        org.roles = list(wanted)
        ctx.session.flush()


# ------------------------------------------------------------------ suspension

SUSPENSION_REASON_MAX_LENGTH = 1000


def suspension_notice(org: Organisation) -> str:
    """What a suspended organisation's users (sign-in page) and API clients are told."""
    since = org.suspended_at.strftime("%Y-%m-%d") if org.suspended_at else "?"
    return f"{org.name} is suspended by the regulator since {since}: {org.suspended_reason}"


def refuse_if_suspended(org: Organisation) -> None:
    """Forbidden (``organisation_suspended``, with the notice) when `org` is suspended."""
    if org.suspended:
        raise Forbidden(suspension_notice(org), code="organisation_suspended")


def _oversight_refusal(actor: Organisation, verb: str) -> Forbidden | None:
    if set(actor.roles) & ONBOARDING_ROLES:
        return None
    return Forbidden(
        f"{actor.name} cannot {verb} organisations: it needs one of the roles {', '.join(sorted(ONBOARDING_ROLES))}",
        code="wrong_role",
    )


def suspension_refusal(actor: Organisation, org: Organisation) -> LotlineError | None:
    """Why `actor` may not suspend `org` now (the error `suspend` raises), or None if it may."""
    wrong_role = _oversight_refusal(actor, "suspend")
    if wrong_role is not None:
        return wrong_role
    if org.id == actor.id:
        return Forbidden(f"{actor.name} cannot suspend itself", code="cannot_suspend_self")
    if "admin" in org.roles or org.name == OPERATOR_NAME:
        return Forbidden(
            f"{org.name} holds the admin role of the ledger and cannot be suspended", code="cannot_suspend_admin"
        )
    if org.suspended:
        return Conflict(
            f"{org.name} is already suspended (since {org.suspended_at:%Y-%m-%d})", code="already_suspended"
        )
    return None


def _role_admin(ctx: Ctx, actor: Organisation) -> Organisation:
    """Who signs role changes for `actor`: itself when it holds the ledger's admin role, else the operator
    (a regulator without the admin role; the store records the actor)."""
    if "admin" in actor.roles:
        return actor
    admin = operator(ctx)
    if admin is None:
        raise Conflict("no operator organisation yet: run `lotline deploy` first")
    return admin


def suspend(ctx: Ctx, actor: Organisation, org: Organisation, reason: str) -> Organisation:
    """Suspend `org` in one action: every role it holds on chain is revoked (one transaction, so the ledger
    refuses all its writes), the roles are remembered for `reinstate`, its users' browser sessions are deleted
    (a copied cookie does not bring one back) and its API tokens stop working. Who, when and why are recorded.

    Only an organisation with one of ``ONBOARDING_ROLES`` may suspend; not itself, not one holding the admin
    role (the operator), and not one already suspended (Conflict ``already_suspended``). `reason` is required.
    """
    refusal = suspension_refusal(actor, org)
    if refusal is not None:
        raise refusal
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("give the reason for the suspension (its users are shown it)", field="reason")
    if len(reason) > SUSPENSION_REASON_MAX_LENGTH:
        raise InvalidInput(f"the reason must be at most {SUSPENSION_REASON_MAX_LENGTH} characters", field="reason")
    check_text(reason, "reason", multiline=True)
    # The chain is authoritative: revoke whatever it grants, also a role the store does not show.
    on_chain = [r for r in ROLE_NAMES if ctx.ledger.has_role(r, org.chain_address)]
    held = sorted(set(org.roles) | set(on_chain))
    _sync_roles(ctx, _role_admin(ctx, actor), org, held, [])
    org.suspended_roles = held
    org.suspended_at = datetime.now(UTC)
    org.suspended_reason = reason
    org.suspended_by_id = actor.id
    sessions.end_organisation(ctx, org)
    ctx.session.flush()
    log.info("%s suspended %s (roles %s): %s", actor.name, org.name, ", ".join(held) or "none", reason)
    return org


def reinstate(ctx: Ctx, actor: Organisation, org: Organisation) -> Organisation:
    """Lift `org`'s suspension: the roles it held are granted again on chain (one transaction) and its users
    may sign in again; its API tokens work again. Conflict ``not_suspended`` when it is not suspended."""
    wrong_role = _oversight_refusal(actor, "reinstate")
    if wrong_role is not None:
        raise wrong_role
    if not org.suspended:
        raise Conflict(f"{org.name} is not suspended", code="not_suspended")
    roles = sorted(org.suspended_roles or [])
    _sync_roles(ctx, _role_admin(ctx, actor), org, [], roles)
    org.suspended_at = None
    org.suspended_reason = None
    org.suspended_roles = None
    org.suspended_by_id = None
    ctx.session.flush()
    log.info("%s reinstated %s (roles %s)", actor.name, org.name, ", ".join(roles) or "none")
    return org


def suspended_organisations(ctx: Ctx) -> list[Organisation]:
    return list(
        ctx.session.scalars(
            select(Organisation).where(Organisation.suspended_at.is_not(None)).order_by(Organisation.name)
        )
    )


def check_new_user(ctx: Ctx, email: str, password: str) -> str:
    """The normalised e-mail of a user that may be added; InvalidInput/Conflict naming the field otherwise."""
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise InvalidInput("e-mail must look like name@example.org", field="email")
    _check_password_rule(password, "password")
    if ctx.session.scalars(select(User).where(User.email == email)).first():
        raise Conflict(f"a user with e-mail {email} already exists", field="email")
    return email


def new_user_problems(ctx: Ctx, email: str, password: str) -> list[InvalidInput | Conflict]:
    """Everything ``check_new_user`` would refuse, the e-mail's and the password's refusal both (a form shows
    them at once)."""
    problems: list[InvalidInput | Conflict] = []
    try:
        check_new_user(ctx, email, "x" * MIN_PASSWORD_LENGTH)
    except (InvalidInput, Conflict) as err:
        problems.append(err)
    return problems + password_problems(password, "password")


def password_problems(password: str, field: str) -> list[InvalidInput]:
    """The password rule's refusal of ``password`` (under ``field``), if any."""
    try:
        _check_password_rule(password, field)
    except InvalidInput as err:
        return [err]
    return []


MIN_PASSWORD_LENGTH = 10


def _check_password_rule(password: str, field: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters", field=field)


def add_user(ctx: Ctx, org: Organisation, email: str, display_name: str, password: str) -> User:
    email = check_new_user(ctx, email, password)
    user = User(
        organisation=org,
        email=email,
        display_name=check_text((display_name or email).strip()[:200], "display_name"),
        password_hash=_hasher.hash(password),
    )
    ctx.session.add(user)
    ctx.session.flush()
    return user


def authenticate(ctx: Ctx, email: str, password: str) -> User:
    """The active user with this e-mail and password; one vague error otherwise (no account probing)."""
    user = ctx.session.scalars(select(User).where(User.email == (email or "").strip().lower())).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.is_active:
        raise Forbidden("e-mail or password is wrong", code="bad_credentials")
    refuse_if_suspended(user.organisation)  # only told to someone who knows the password
    user.last_login_at = datetime.now(UTC)
    return user


def change_password(ctx: Ctx, user: User, current: str, new: str) -> None:
    """Set `user`'s password to `new` after checking `current`; every session of the user ends (the caller
    opens a fresh one for the browser that asked). Forbidden on a wrong current password, InvalidInput naming
    the field when the new one breaks the rule or is the same."""
    try:
        _hasher.verify(user.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise Forbidden("the current password is wrong", field="current_password", code="bad_credentials") from None
    _check_password_rule(new, "new_password")
    if new == current:
        raise InvalidInput("the new password must differ from the current one", field="new_password")
    user.password_hash = _hasher.hash(new)
    sessions.end_user(ctx, user)
    ctx.session.flush()
    log.info("%s changed their password; their sessions were ended", user.email)


def set_language(ctx: Ctx, user: User, language: str | None) -> None:
    """Remember the language `user` reads Lotline in (None: follow the browser's Accept-Language).
    InvalidInput naming the field for a language Lotline has no translation for."""
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(f"the language must be one of {', '.join(LANGUAGES)}", field="language")
    user.language = language
    ctx.session.flush()


def register_product(
    ctx: Ctx,
    org: Organisation,
    gtin: str,
    name: str,
    category: str | None = None,
    on_food_traceability_list: bool = False,
    unit: str = "kg",
    commodity: str | None = None,
    variety: str | None = None,
) -> Product:
    """Register a GTIN of ``org``'s. ``commodity`` and ``variety``, when given, bind every lot of it: its
    events fill them in and may not name another (``invariants.bind_product_fields``)."""
    gtin14 = parse_gtin(gtin)
    prefixes = org.company_prefixes
    if prefixes and not any(gtin_has_prefix(gtin14, p) for p in prefixes):
        raise Forbidden(
            f"GTIN {gtin14} is not under {org.name}'s GS1 company prefix{'es' if len(prefixes) > 1 else ''} "
            f"{', '.join(prefixes)}",
            field="gtin",
        )
    name = (name or "").strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("product name must be 1-200 characters", field="name")
    check_text(name, "name")
    if ctx.session.scalars(select(Product).where(Product.gtin == gtin14)).first():
        raise Conflict(f"GTIN {gtin14} is already registered", field="gtin")
    if not prefixes and set(org.roles) & CREATOR_ROLES:
        # No company prefix of its own: the GTIN is registered to it alone on chain (a single-GTIN licence,
        # its 13 digits after the indicator), so no other key can create lots of it first.
        owner = ctx.ledger.gtin_owner(gtin14)
        if owner is None:
            admin = operator(ctx)
            if admin is None:
                raise Conflict("no operator organisation yet: run `lotline deploy` first")
            ctx.ledger.register_company_prefix(signer(ctx, admin), gtin14[1:], org.chain_address)
        elif owner.lower() != org.chain_address.lower():
            raise Forbidden(
                f"GTIN {gtin14} belongs to another organisation on chain", field="gtin", code="gtin_not_owned"
            )
    product = Product(
        organisation=org,
        gtin=gtin14,
        name=name,
        category=_bounded(category, 100, "category"),
        on_food_traceability_list=on_food_traceability_list,
        unit=_bounded(unit or "kg", 16, "unit"),
        commodity=_bounded(commodity, 100, "commodity"),
        variety=_bounded(variety, 100, "variety"),
    )
    ctx.session.add(product)
    ctx.session.flush()
    return product


def _bounded(value: str | None, limit: int, field: str, *, multiline: bool = False) -> str | None:
    value = (value or "").strip() or None
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{field} must be at most {limit} characters", field=field)
    return None if value is None else check_text(value, field, multiline=multiline)


def register_location(
    ctx: Ctx,
    org: Organisation,
    gln: str,
    name: str,
    address: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    kind: str = "other",
) -> Location:
    gln13 = parse_gln(gln)
    prefixes = org.company_prefixes
    if prefixes and not any(gln_has_prefix(gln13, p) for p in prefixes):
        raise Forbidden(
            f"GLN {gln13} is not under {org.name}'s GS1 company prefix{'es' if len(prefixes) > 1 else ''} "
            f"{', '.join(prefixes)}",
            field="gln",
        )
    if latitude is not None and not -90 <= float(latitude) <= 90:
        raise InvalidInput("latitude must be between -90 and 90", field="latitude")
    if longitude is not None and not -180 <= float(longitude) <= 180:
        raise InvalidInput("longitude must be between -180 and 180", field="longitude")
    name = (name or "").strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("location name must be 1-200 characters", field="name")
    check_text(name, "name")
    address = _bounded(address, 1000, "address", multiline=True)
    if ctx.session.scalars(select(Location).where(Location.gln == gln13)).first():
        raise Conflict(f"GLN {gln13} is already registered", field="gln")
    location = Location(
        organisation=org,
        gln=gln13,
        name=name,
        address=address,
        latitude=latitude,
        longitude=longitude,
        kind=kind or "other",
    )
    ctx.session.add(location)
    ctx.session.flush()
    return location


def get_org(ctx: Ctx, org_id: int) -> Organisation:
    org = ctx.session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"no organisation {org_id}")
    return org


def org_by_address(ctx: Ctx, address: str) -> Organisation | None:
    return ctx.session.scalars(
        select(Organisation).where(func.lower(Organisation.chain_address) == address.lower())
    ).first()


def location_by_gln(ctx: Ctx, gln: str, field: str = "location_gln") -> Location:
    location = ctx.session.scalars(select(Location).where(Location.gln == gln)).first()
    if location is None:
        raise InvalidInput(f"GLN {gln} is not a registered location", field=field, code="unknown_gln")
    return location
