#!/usr/bin/env python3
"""Static checks of the Odoo 17 addon ``odoo_addon/whatsapp_sidecar``, without Odoo.

Run from anywhere:  python3 tests/addon_checks.py [--addon PATH] [--self-test]

What is checked (each failure prints one line ``FAIL [check] where: what`` and
the script exits 1):

* every Python file compiles; the manifest has the keys and values the project
  requires and every data/demo path exists (and every data file is listed);
* the Python field declarations are parsed (ast) to know each model's fields,
  comodels, methods, ``_order`` and ``related`` paths;
* every model and wizard has an access row; every access row names a known
  model and group; record rules name known models and fields;
* every view's XML is well formed; list, search, pivot, graph, calendar and
  activity archs validate against Odoo 17's RelaxNG schemas in
  ``<repo>/../shared/odoo17-rng`` (or ``$SHARED_DIR/odoo17-rng``);
* every field a view, a filter, a domain or a modifier names exists on its
  model (sub-views switch to the comodel, ``parent.`` to the parent model);
  every ``type="object"`` button names a method of the model;
* no ``attrs=`` / ``states=`` (refused by Odoo 17);
* every ``ref``, ``ref()``, ``%(xmlid)d``, ``groups=``, menu parent/action is
  defined before it is used (or is a known Odoo 17 xmlid);
* ``i18n/whatsapp_sidecar.pot`` and ``i18n/fr.po`` parse; ``fr.po`` translates
  every msgid of the .pot, keeps its placeholders, and the .pot holds every
  ``_()`` string of the Python code and every ``string=`` of the fields;
* the OCA layout: readme/ fragments, icon (a real PNG), tests, demo noupdate.

``--self-test`` copies the addon to a temporary folder, breaks it in a dozen
known ways (unknown field in a view, missing ref, bad model in the access
file, ``attrs=``, schema violation, ...) and checks that each break is caught,
and that the untouched copy passes.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import os
import re
import shutil
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported clearly to the user
    sys.exit("addon_checks: lxml is missing: run `python3 -m pip install lxml polib`")
try:
    import polib
except ImportError:  # pragma: no cover
    sys.exit("addon_checks: polib is missing: run `python3 -m pip install lxml polib`")

REPO = Path(__file__).resolve().parent.parent
MODULE = "whatsapp_sidecar"
DEFAULT_ADDON = REPO / "odoo_addon" / MODULE
RNG_VIEWS = ("tree", "search", "pivot", "graph", "calendar", "activity")

# ---------------------------------------------------------------------------
# What we know about Odoo 17 itself (checked against the 17.0 source tree).
# ---------------------------------------------------------------------------
MAGIC_FIELDS = {"id", "display_name", "create_uid", "create_date", "write_uid", "write_date"}
MIXIN_FIELDS = {
    "mail.thread": {
        "message_ids", "message_follower_ids", "message_partner_ids", "has_message",
        "message_is_follower", "message_needaction", "message_needaction_counter",
        "message_has_error", "message_has_error_counter", "message_attachment_count",
        "website_message_ids", "message_has_sms_error",
    },
    "mail.activity.mixin": {
        "activity_ids", "activity_state", "activity_user_id", "activity_type_id",
        "activity_type_icon", "activity_date_deadline", "my_activity_date_deadline",
        "activity_summary", "activity_exception_decoration", "activity_exception_icon",
        "activity_calendar_event_id",
    },
}
# Fields of Odoo models this addon's views, data and domains use.
EXTERNAL_MODELS: dict[str, dict[str, str | None]] = {
    "res.partner": {
        "name": None, "mobile": None, "phone": None, "email": None,
        "company_id": "res.company", "category_id": "res.partner.category",
        "country_id": "res.country", "commercial_partner_id": "res.partner",
        "active": None, "is_company": None, "parent_id": "res.partner",
        "user_id": "res.users", "lang": None, "tz": None,
    },
    "sale.order": {
        "name": None, "state": None, "partner_id": "res.partner", "company_id": "res.company",
        "amount_total": None, "currency_id": "res.currency", "user_id": "res.users",
        "locked": None, "invoice_count": None, "order_line": "sale.order.line",
    },
    "account.move": {
        "name": None, "state": None, "move_type": None, "partner_id": "res.partner",
        "company_id": "res.company", "amount_total": None, "amount_residual": None,
        "currency_id": "res.currency", "payment_state": None, "journal_id": None,
        "invoice_date": None, "invoice_date_due": None,
        "invoice_line_ids": "account.move.line",
    },
    "res.config.settings": {"company_id": "res.company"},
    "res.company": {"name": None, "country_id": "res.country", "currency_id": "res.currency",
                    "partner_id": "res.partner"},
    "res.users": {"name": None, "partner_id": "res.partner", "company_id": "res.company",
                  "company_ids": "res.company", "groups_id": "res.groups"},
    "res.country": {"name": None, "code": None},
    "res.currency": {"name": None},
    "res.partner.category": {"name": None},
    "ir.attachment": {"name": None, "datas": None, "raw": None, "res_model": None,
                      "res_id": None, "mimetype": None},
    "ir.actions.server": {"name": None, "model_id": "ir.model", "model_name": None},
    "ir.model": {"model": None, "name": None},
    "ir.ui.view": {"name": None, "model": None, "arch": None, "inherit_id": "ir.ui.view",
                   "priority": None, "mode": None},
    "ir.actions.act_window": {
        "name": None, "res_model": None, "view_mode": None, "search_view_id": "ir.ui.view",
        "context": None, "domain": None, "help": None, "target": None, "view_id": "ir.ui.view",
        "binding_model_id": "ir.model", "binding_view_types": None, "groups_id": "res.groups",
        "limit": None, "res_id": None,
    },
    "ir.rule": {"name": None, "model_id": "ir.model", "domain_force": None, "groups": "res.groups",
                "perm_read": None, "perm_write": None, "perm_create": None,
                "perm_unlink": None},
    "res.groups": {"name": None, "category_id": "ir.module.category", "implied_ids": "res.groups",
                   "users": "res.users", "comment": None},
    "ir.module.category": {"name": None, "description": None, "sequence": None,
                           "parent_id": "ir.module.category"},
    "ir.cron": {"name": None, "model_id": "ir.model", "state": None, "code": None,
                "interval_number": None, "interval_type": None, "active": None},
    "res.groups.dummy": {},
}
# Methods of Odoo models that buttons of the inherited views may call.
EXTERNAL_METHODS: dict[str, set[str]] = {}
# External xmlids this addon uses, all present in Odoo 17.0 (base, sale,
# sales_team, account); the checker cannot load Odoo, so it lists them.
KNOWN_EXTERNAL_XMLIDS = {
    "base.group_user", "base.group_system", "base.group_multi_company", "base.group_no_one",
    "base.user_root", "base.user_admin", "base.module_category_hidden", "base.main_company",
    "base.ci", "base.model_res_partner", "base.view_partner_form",
    "base.view_res_partner_filter", "base.res_config_settings_view_form",
    "sale.view_order_form", "sale.view_sales_order_filter", "sale.model_sale_order",
    "account.view_move_form", "account.model_account_move",
    "sales_team.group_sale_salesman_all_leads", "account.group_account_invoice",
    "base.group_partner_manager", "product.product_product_25",
}
REQUIRED_DEPENDS = {"base", "mail", "contacts", "sale_management", "account"}
ALLOWED_LICENSES = {"LGPL-3", "AGPL-3", "GPL-3", "OPL-1", "OEEL-1", "Other proprietary"}
VIEW_MODES = {"tree", "form", "kanban", "pivot", "graph", "calendar", "activity", "search"}
MODIFIER_ATTRS = ("invisible", "readonly", "required", "column_invisible")
EXPR_NAMES = {
    "True", "False", "None", "context", "uid", "parent", "context_today", "current_date",
    "today", "now", "datetime", "relativedelta", "time", "allowed_company_ids",
    "company_ids", "user", "abs", "len", "bool", "str", "int", "float",
}
DOMAIN_OPERATORS = {
    "=", "!=", "<", ">", "<=", ">=", "in", "not in", "like", "not like", "ilike",
    "not ilike", "=like", "=ilike", "child_of", "parent_of", "=?", "any", "not any",
}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{\{[^}]*\}\}")


# ---------------------------------------------------------------------------
# Result collection
# ---------------------------------------------------------------------------
class Report:
    def __init__(self, root: Path):
        self.root = root
        self.failures: list[str] = []
        self.checks = 0

    def fail(self, check: str, where, message: str) -> None:
        if isinstance(where, Path):
            try:
                where = where.relative_to(self.root)
            except ValueError:
                pass
        self.failures.append(f"FAIL [{check}] {where}: {message}")

    def ok(self) -> None:
        self.checks += 1


# ---------------------------------------------------------------------------
# Python: models and fields
# ---------------------------------------------------------------------------
@dataclass
class FieldInfo:
    name: str
    ftype: str
    comodel: str | None = None
    related: str | None = None
    compute: str | None = None
    groups: str | None = None
    string: str | None = None
    domain: str | None = None
    line: int = 0
    path: Path | None = None


@dataclass
class ModelInfo:
    name: str
    new: bool  # declared with _name (a model of this addon) rather than extended
    transient: bool = False
    inherits: list[str] = field(default_factory=list)
    fields: dict[str, FieldInfo] = field(default_factory=dict)
    methods: set[str] = field(default_factory=set)
    order: str | None = None
    rec_name: str | None = None
    path: Path | None = None


def _const(node):
    return node.value if isinstance(node, ast.Constant) else None


def _str_list(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant)]
    return []


RELATIONAL = {"Many2one", "One2many", "Many2many"}


def parse_models(addon: Path, report: Report) -> dict[str, ModelInfo]:
    models: dict[str, ModelInfo] = {}
    for path in sorted(addon.rglob("*.py")):
        if "tests" in path.relative_to(addon).parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError:
            continue  # reported by check_python
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            attrs = {}
            for stmt in cls.body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                    stmt.targets[0], ast.Name
                ):
                    attrs[stmt.targets[0].id] = stmt.value
            name = _const(attrs.get("_name")) if "_name" in attrs else None
            inherits = _str_list(attrs["_inherit"]) if "_inherit" in attrs else []
            if not name and len(inherits) == 1:
                model_name, new = inherits[0], False
            elif name:
                model_name, new = name, True
            else:
                continue
            bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                     for b in cls.bases}
            info = models.setdefault(model_name, ModelInfo(model_name, new=new, path=path))
            info.new = info.new or new
            info.transient = info.transient or "TransientModel" in bases
            info.inherits += [i for i in inherits if i != model_name]
            if "_order" in attrs:
                info.order = _const(attrs["_order"])
            if "_rec_name" in attrs:
                info.rec_name = _const(attrs["_rec_name"])
            for stmt in cls.body:
                if isinstance(stmt, ast.FunctionDef):
                    info.methods.add(stmt.name)
                if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)):
                    continue
                func = stmt.value.func
                if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                        and func.value.id == "fields"):
                    continue
                fname = stmt.targets[0].id
                kwargs = {k.arg: k.value for k in stmt.value.keywords if k.arg}
                comodel = None
                if func.attr in RELATIONAL:
                    if stmt.value.args:
                        comodel = _const(stmt.value.args[0])
                    comodel = _const(kwargs.get("comodel_name")) or comodel
                string = _const(kwargs.get("string"))
                if string is None and func.attr not in RELATIONAL and stmt.value.args:
                    first = _const(stmt.value.args[0])
                    if func.attr == "Selection" and len(stmt.value.args) > 1:
                        first = _const(stmt.value.args[1])
                    string = first if isinstance(first, str) else None
                info.fields[fname] = FieldInfo(
                    name=fname, ftype=func.attr, comodel=comodel,
                    related=_const(kwargs.get("related")),
                    compute=_const(kwargs.get("compute")),
                    groups=_const(kwargs.get("groups")),
                    string=string if isinstance(string, str) else None,
                    domain=_const(kwargs.get("domain")),
                    line=stmt.lineno, path=path,
                )
    # Resolve the comodel of related relational fields.
    for _ in range(3):
        for info in models.values():
            for f in info.fields.values():
                if f.related and not f.comodel:
                    f.comodel = resolve_path(models, info.name, f.related)[1]
    return models


def field_names(models, model: str) -> set[str] | None:
    """All field names of ``model``, or None when the model is unknown."""
    names = set()
    known = False
    if model in EXTERNAL_MODELS:
        names |= set(EXTERNAL_MODELS[model])
        known = True
    if model in models:
        info = models[model]
        names |= set(info.fields)
        for parent in info.inherits:
            names |= MIXIN_FIELDS.get(parent, set())
            if parent in models:
                names |= set(models[parent].fields)
        known = True
    return names | MAGIC_FIELDS if known else None


def comodel_of(models, model: str, fname: str) -> str | None:
    if model in models and fname in models[model].fields:
        return models[model].fields[fname].comodel
    if fname in ("create_uid", "write_uid"):
        return "res.users"
    return EXTERNAL_MODELS.get(model, {}).get(fname)


def resolve_path(models, model: str, path: str):
    """(error or None, comodel of the last field) for a dotted field path."""
    current = model
    parts = path.split(".")
    for index, part in enumerate(parts):
        names = field_names(models, current)
        if names is None:
            return None, None  # unknown model: cannot say more
        if part not in names:
            return f"field {part!r} does not exist on {current}", None
        nxt = comodel_of(models, current, part)
        if index < len(parts) - 1 and nxt is None:
            return None, None
        current = nxt
    return None, current


def known_model(models, model: str) -> bool:
    return model in models or model in EXTERNAL_MODELS


def check_python(addon: Path, report: Report) -> None:
    for path in sorted(addon.rglob("*.py")):
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
            report.ok()
        except SyntaxError as exc:
            report.fail("python", path, f"does not compile: {exc.msg} (line {exc.lineno})")


def check_models(models, report: Report) -> None:
    for info in models.values():
        for f in info.fields.values():
            where = f"{f.path.name}:{f.line}" if f.path else info.name
            if f.ftype in ("Many2one", "One2many", "Many2many") and not f.related:
                if not f.comodel:
                    report.fail("models", where, f"{info.name}.{f.name} has no comodel")
                elif not known_model(models, f.comodel) and not f.comodel.startswith(
                    ("res.", "ir.", "mail.")
                ):
                    report.fail("models", where,
                                f"{info.name}.{f.name}: unknown comodel {f.comodel!r}")
                elif f.comodel.startswith("whatsapp.") and f.comodel not in models:
                    report.fail("models", where,
                                f"{info.name}.{f.name}: unknown comodel {f.comodel!r}")
                else:
                    report.ok()
            if f.related:
                error, _ = resolve_path(models, info.name, f.related)
                if error:
                    report.fail("models", where, f"related {f.related!r} of {info.name}."
                                f"{f.name}: {error}")
            if f.compute and f.compute not in info.methods:
                report.fail("models", where, f"compute method {f.compute} of {info.name}."
                            f"{f.name} is not defined in the class")
            if f.groups:
                for group in f.groups.split(","):
                    if "." not in group.strip():
                        report.fail("models", where, f"groups {group!r} must be a full xmlid")
            if f.domain and f.comodel:
                check_domain(models, f.comodel, f.domain, report, "models", where,
                             value_model=info.name)
        for attr, value in (("_order", info.order), ("_rec_name", info.rec_name)):
            if not value:
                continue
            names = field_names(models, info.name) or set()
            for term in value.split(","):
                fname = term.strip().split(" ")[0]
                if fname and fname not in names:
                    report.fail("models", info.path, f"{attr} of {info.name} names unknown "
                                f"field {fname!r}")


# ---------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------
def load_manifest(addon: Path, report: Report) -> dict:
    path = addon / "__manifest__.py"
    try:
        manifest = ast.literal_eval(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError) as exc:
        report.fail("manifest", path, f"cannot be read as a Python dict literal: {exc}")
        return {}
    if not isinstance(manifest, dict):
        report.fail("manifest", path, "is not a dict")
        return {}
    return manifest


def check_manifest(addon: Path, manifest: dict, report: Report) -> None:
    path = addon / "__manifest__.py"
    for key in ("name", "version", "license", "depends", "data", "demo", "excludes",
                "application", "author", "summary"):
        if key not in manifest:
            report.fail("manifest", path, f"missing key {key!r}")
    if not re.fullmatch(r"17\.0\.\d+\.\d+\.\d+", str(manifest.get("version", ""))):
        report.fail("manifest", path, f"version {manifest.get('version')!r} is not 17.0.x.y.z")
    if manifest.get("license") not in ALLOWED_LICENSES:
        report.fail("manifest", path, f"unknown license {manifest.get('license')!r}")
    missing = REQUIRED_DEPENDS - set(manifest.get("depends", []))
    if missing:
        report.fail("manifest", path, f"depends lacks {sorted(missing)}")
    if "whatsapp" not in manifest.get("excludes", []):
        report.fail("manifest", path, "excludes must list 'whatsapp' (Odoo Enterprise)")
    if manifest.get("application") is not True:
        report.fail("manifest", path, "application must be True")
    listed = []
    for key in ("data", "demo"):
        for entry in manifest.get(key, []):
            if not (addon / entry).is_file():
                report.fail("manifest", path, f"{key} file {entry!r} does not exist")
            else:
                report.ok()
            if entry in listed:
                report.fail("manifest", path, f"{entry!r} is listed twice")
            listed.append(entry)
    for file in sorted(addon.rglob("*")):
        rel = file.relative_to(addon).as_posix()
        top = rel.split("/")[0]
        if file.suffix in (".xml", ".csv") and top not in ("i18n", "static", "tests"):
            if rel not in listed:
                report.fail("manifest", file, "is not listed in the manifest's data or demo")


def check_layout(addon: Path, manifest: dict, report: Report) -> None:
    for rel in ("__init__.py", "models/__init__.py", "security/ir.model.access.csv",
                "readme/DESCRIPTION.md", "readme/USAGE.md", "readme/CONFIGURE.md",
                "tests/__init__.py", "i18n/whatsapp_sidecar.pot", "i18n/fr.po"):
        path = addon / rel
        if not path.is_file() or not path.read_bytes().strip():
            report.fail("layout", path, "is missing or empty")
        else:
            report.ok()
    if not any((addon / d / "__init__.py").is_file() for d in ("wizards", "wizard")):
        report.fail("layout", addon, "has no wizards/ (or wizard/) package")
    tests = list((addon / "tests").glob("test_*.py"))
    if not tests:
        report.fail("layout", addon / "tests", "has no test_*.py")
    init = (addon / "tests" / "__init__.py")
    if init.is_file():
        text = init.read_text(encoding="utf-8")
        for test in tests:
            if f"import {test.stem}" not in text:
                report.fail("layout", init, f"does not import {test.stem}: Odoo would skip it")
    icon = addon / "static" / "description" / "icon.png"
    check_png(icon, report)
    for entry in manifest.get("demo", []):
        path = addon / entry
        if path.suffix == ".xml" and path.is_file():
            try:
                root = etree.parse(str(path)).getroot()
            except etree.XMLSyntaxError:
                continue
            if root.get("noupdate") not in ("1", "True") and not all(
                d.get("noupdate") in ("1", "True") for d in root.iter("data")
            ):
                report.fail("layout", path, "demo data must be noupdate=\"1\"")


def check_png(path: Path, report: Report) -> None:
    try:
        data = path.read_bytes()
    except OSError:
        report.fail("layout", path, "is missing")
        return
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        report.fail("layout", path, "is not a PNG file")
        return
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    try:
        while pos < len(data):
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            kind = data[pos + 4:pos + 8]
            body = data[pos + 8:pos + 8 + length]
            (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
            if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
                raise ValueError(f"bad CRC in chunk {kind!r}")
            if kind == b"IDAT":
                idat += body
            pos += 12 + length
        zlib.decompress(idat)
    except (struct.error, ValueError, zlib.error) as exc:
        report.fail("layout", path, f"is a broken PNG: {exc}")
        return
    if not (32 <= width <= 1024 and 32 <= height <= 1024):
        report.fail("layout", path, f"icon size {width}x{height} is not 32..1024 px")
    else:
        report.ok()


# ---------------------------------------------------------------------------
# XML data: records, views, refs
# ---------------------------------------------------------------------------
class XmlIds:
    def __init__(self):
        self.defined: set[str] = set()

    def full(self, xmlid: str) -> str:
        return xmlid if "." in xmlid else f"{MODULE}.{xmlid}"

    def define(self, xmlid: str) -> None:
        self.defined.add(self.full(xmlid))

    def check(self, xmlid: str, report: Report, where, what: str) -> None:
        full = self.full(xmlid.strip())
        if full in self.defined or full in KNOWN_EXTERNAL_XMLIDS:
            report.ok()
            return
        module = full.split(".")[0]
        if module == MODULE:
            report.fail("refs", where, f"{what} {xmlid!r} is not defined before it is used")
        else:
            report.fail("refs", where, f"{what} {xmlid!r} is not a known Odoo 17 xmlid "
                        "(add it to KNOWN_EXTERNAL_XMLIDS once checked)")


REF_CALL = re.compile(r"ref\(\s*['\"]([\w.]+)['\"]\s*\)")
XMLID_INTERP = re.compile(r"%\(([\w.]+)\)d")


def model_xmlids(models) -> set[str]:
    return {f"{MODULE}.model_{name.replace('.', '_')}" for name, m in models.items() if m.new}


def expression_names(expr: str):
    """(names, parent_names) used by a Python-like view expression, or None."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        return None
    names, parent = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "parent":
                parent.add(node.attr)
        elif isinstance(node, ast.Name) and node.id not in EXPR_NAMES:
            names.add(node.id)
    return names, parent


def check_domain(models, model, domain, report, check, where, value_model=None):
    """Check the field paths of a domain string, and the field names it uses as
    values when ``value_model`` is given (client-side domains of fields)."""
    try:
        tree = ast.parse(domain.strip(), mode="eval")
    except SyntaxError as exc:
        report.fail(check, where, f"domain {domain!r} is not valid: {exc.msg}")
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == 3:
            left, op, right = node.elts
            if (isinstance(left, ast.Constant) and isinstance(left.value, str)
                    and isinstance(op, ast.Constant) and op.value in DOMAIN_OPERATORS):
                error, _ = resolve_path(models, model, left.value)
                if error:
                    report.fail(check, where, f"domain on {model}: {error}")
                else:
                    report.ok()
                if value_model:
                    used = expression_names(ast.unparse(right)) or (set(), set())
                    names = field_names(models, value_model)
                    for name in used[0]:
                        if names is not None and name not in names:
                            report.fail(check, where, f"domain value {name!r} is not a "
                                        f"field of {value_model}")


class ViewChecker:
    def __init__(self, models, report: Report, rng_dir: Path, xmlids: XmlIds):
        self.models = models
        self.report = report
        self.rng_dir = rng_dir
        self.xmlids = xmlids
        self._schemas: dict[str, etree.RelaxNG | None] = {}

    def schema(self, view_type: str):
        if view_type not in self._schemas:
            path = self.rng_dir / f"{view_type}_view.rng"
            try:
                self._schemas[view_type] = etree.RelaxNG(etree.parse(str(path)))
            except (OSError, etree.XMLSyntaxError, etree.RelaxNGParseError) as exc:
                self.report.fail("rng", path, f"cannot load the schema: {exc}")
                self._schemas[view_type] = None
        return self._schemas[view_type]

    def validate_rng(self, arch, where) -> None:
        schema = self.schema(arch.tag)
        if schema is None:
            return
        copy = etree.fromstring(etree.tostring(arch))
        if schema.validate(copy):
            self.report.ok()
            return
        for error in schema.error_log:
            self.report.fail("rng", where, f"<{arch.tag}> does not match Odoo 17's "
                             f"{arch.tag}_view.rng: {error.message} (line {error.line})")

    def check_view(self, record, where, model: str, inherited: bool) -> None:
        arch_field = record.find("field[@name='arch']")
        if arch_field is None:
            self.report.fail("views", where, "view without an arch")
            return
        roots = [c for c in arch_field if isinstance(c.tag, str)]
        if not roots:
            self.report.fail("views", where, "empty arch")
            return
        for node in arch_field.iter():
            if not isinstance(node.tag, str):
                continue
            for banned in ("attrs", "states"):
                if banned in node.attrib:
                    self.report.fail("views", where, f"<{node.tag}> uses {banned}=, which "
                                     "Odoo 17 refuses: use invisible/readonly/required "
                                     "expressions")
        if field_names(self.models, model) is None:
            self.report.fail("views", where, f"unknown model {model!r}")
            return
        for root in roots:
            if not inherited and root.tag in RNG_VIEWS:
                self.validate_rng(root, where)
            self.walk(root, model, None, where, view_type=root.tag if not inherited else None)

    def _check_field(self, model, fname, where, context):
        names = field_names(self.models, model)
        if names is not None and fname not in names:
            self.report.fail("fields", where, f"{context}: field {fname!r} does not exist on "
                             f"{model}")
        else:
            self.report.ok()

    def _check_expr(self, model, parent_model, expr, where, context):
        used = expression_names(expr)
        if used is None:
            self.report.fail("views", where, f"{context}: {expr!r} is not a valid expression")
            return
        names, parent_names = used
        for name in names:
            self._check_field(model, name, where, context)
        if parent_model:
            for name in parent_names:
                self._check_field(parent_model, name, where, context)

    def walk(self, node, model, parent_model, where, view_type=None):
        tag = node.tag
        if not isinstance(tag, str):
            return
        record_where = where
        where = f"{where.rsplit(':', 1)[0]}:{node.sourceline}"
        if tag == "xpath" or node.get("position"):
            pass  # an anchor of an inherited view: its children are checked below
        elif tag == "field" and node.get("name"):
            self._check_field(model, node.get("name"), where, f"<field name={node.get('name')!r}>")
            if node.get("domain") and view_type != "search":
                comodel = comodel_of(self.models, model, node.get("name"))
                if comodel:
                    check_domain(self.models, comodel, node.get("domain"), self.report,
                                 "fields", where, value_model=model)
        for attr in MODIFIER_ATTRS + tuple(a for a in node.attrib if a.startswith("decoration-")):
            value = node.get(attr)
            if value is None or value in ("1", "0") and attr != "column_invisible":
                continue
            if attr.startswith("decoration-") and tag == "field" and view_type != "tree":
                pass
            self._check_expr(model, parent_model, value, where, f"<{tag} {attr}={value!r}>")
        if tag == "filter":
            if node.get("domain"):
                check_domain(self.models, model, node.get("domain"), self.report, "fields",
                             where)
            context = node.get("context") or ""
            for group_by in re.findall(r"['\"]group_by['\"]\s*:\s*['\"]([\w.:]+)['\"]", context):
                self._check_field(model, group_by.split(":")[0], where, "group_by")
            if node.get("date"):
                self._check_field(model, node.get("date"), where, "date filter")
        if tag == "button":
            name = node.get("name") or ""
            kind = node.get("type")
            if kind == "object":
                methods = set()
                if model in self.models:
                    methods |= self.models[model].methods
                    for parent in self.models[model].inherits:
                        if parent in self.models:
                            methods |= self.models[parent].methods
                methods |= EXTERNAL_METHODS.get(model, set())
                if name not in methods:
                    self.report.fail("views", where, f"button {name!r}: no such method on "
                                     f"{model}")
                else:
                    self.report.ok()
            elif kind == "action":
                match = XMLID_INTERP.fullmatch(name)
                if match:
                    self.xmlids.check(match.group(1), self.report, where, "button action")
                elif not name.isdigit():
                    self.report.fail("views", where, f"action button {name!r} must be "
                                     "%(xmlid)d")
        if node.get("groups"):
            for group in node.get("groups").split(","):
                self.xmlids.check(group.strip().lstrip("!"), self.report, where, "group")
        for attr in ("context", "name", "domain"):
            for xmlid in XMLID_INTERP.findall(node.get(attr) or ""):
                if tag != "button":
                    self.xmlids.check(xmlid, self.report, where, f"{attr} of <{tag}>")
        for child in node:
            if not isinstance(child.tag, str):
                continue
            if tag == "field" and child.tag in ("tree", "form", "kanban"):
                comodel = comodel_of(self.models, model, node.get("name"))
                if comodel is None:
                    self.report.fail("fields", where, f"cannot tell the comodel of "
                                     f"{node.get('name')!r} for its sub-view")
                    continue
                if child.tag == "tree":
                    self.validate_rng(child, where)
                self.walk(child, comodel, model, record_where, view_type=child.tag)
            else:
                self.walk(child, model, parent_model, record_where, view_type=view_type)


def check_xml(addon: Path, manifest: dict, models, report: Report, rng_dir: Path) -> dict:
    """Check every data and demo file, in load order. Returns the views found."""
    xmlids = XmlIds()
    for xmlid in model_xmlids(models):
        xmlids.defined.add(xmlid)
        for name, info in models.items():
            if info.new:
                for fname in info.fields:
                    xmlids.defined.add(
                        f"{MODULE}.field_{name.replace('.', '_')}__{fname}")
    checker = ViewChecker(models, report, rng_dir, xmlids)
    views: dict[str, set[str]] = {}
    for entry in manifest.get("data", []) + manifest.get("demo", []):
        path = addon / entry
        if not path.is_file():
            continue
        if path.suffix == ".csv":
            check_access_csv(path, models, xmlids, report)
            continue
        if path.suffix != ".xml":
            continue
        try:
            root = etree.parse(str(path)).getroot()
            report.ok()
        except etree.XMLSyntaxError as exc:
            report.fail("xml", path, f"is not well-formed XML: {exc}")
            continue
        if root.tag != "odoo":
            report.fail("xml", path, "root element must be <odoo>")
        for node in root.iter():
            if not isinstance(node.tag, str):
                continue
            where = f"{path.relative_to(addon).as_posix()}:{node.sourceline}"
            if node.tag == "record":
                check_record(node, where, models, xmlids, checker, report, views)
            elif node.tag == "menuitem":
                for attr in ("parent", "action"):
                    if node.get(attr):
                        xmlids.check(node.get(attr), report, where, f"menuitem {attr}")
                for group in (node.get("groups") or "").split(","):
                    if group.strip():
                        xmlids.check(group.strip().lstrip("!"), report, where, "group")
                icon = node.get("web_icon")
                if icon:
                    module, _, rel = icon.partition(",")
                    if module != MODULE or not (addon / rel).is_file():
                        report.fail("refs", where, f"web_icon {icon!r} does not exist")
                if node.get("id"):
                    xmlids.define(node.get("id"))
            elif node.tag == "template" and node.get("id"):
                xmlids.define(node.get("id"))
    return views


def check_record(node, where, models, xmlids, checker, report, views):
    model = node.get("model")
    names = field_names(models, model)
    if names is None:
        report.fail("xml", where, f"record of unknown model {model!r}")
    record_model_field = None
    for fnode in node.findall("field"):
        fname = fnode.get("name")
        if names is not None and fname not in names:
            report.fail("fields", where, f"record {node.get('id')!r}: field {fname!r} does "
                        f"not exist on {model}")
        if fnode.get("ref"):
            xmlids.check(fnode.get("ref"), report, where, f"ref of field {fname!r}")
        for xmlid in REF_CALL.findall(fnode.get("eval") or ""):
            xmlids.check(xmlid, report, where, "ref()")
        if fnode.get("eval"):
            try:
                ast.parse(fnode.get("eval"), mode="eval")
            except SyntaxError as exc:
                report.fail("xml", where, f"eval of field {fname!r} is not Python: {exc.msg}")
        if fname == "model":
            record_model_field = (fnode.text or "").strip()
        if fname == "groups_id" or fname == "groups":
            pass
    value = lambda name: (node.findtext(f"field[@name='{name}']") or "").strip()  # noqa: E731
    if model == "ir.ui.view":
        target = record_model_field
        inherit = node.find("field[@name='inherit_id']")
        checker.check_view(node, where, target, inherited=inherit is not None)
        arch = node.find("field[@name='arch']")
        if inherit is None and arch is not None and len(arch):
            root = [c for c in arch if isinstance(c.tag, str)]
            if root:
                views.setdefault(target, set()).add(root[0].tag)
    elif model == "ir.actions.act_window":
        res_model = value("res_model")
        if not known_model(models, res_model):
            report.fail("xml", where, f"action on unknown model {res_model!r}")
        for mode in (value("view_mode") or "tree,form").split(","):
            if mode.strip() not in VIEW_MODES:
                report.fail("xml", where, f"unknown view mode {mode!r}")
        for attr in ("context", "domain"):
            text = value(attr)
            if text:
                try:
                    ast.parse(text, mode="eval")
                except SyntaxError as exc:
                    report.fail("xml", where, f"action {attr} is not Python: {exc.msg}")
                if attr == "domain":
                    check_domain(models, res_model, text, report, "fields", where)
    elif model == "ir.rule":
        rule_model = node.find("field[@name='model_id']")
        ref = rule_model.get("ref") if rule_model is not None else None
        target = None
        for name, info in models.items():
            if ref and xmlids.full(ref) == f"{MODULE}.model_{name.replace('.', '_')}":
                target = name
        if target is None:
            report.fail("security", where, f"rule on unknown model ref {ref!r}")
        elif value("domain_force"):
            check_domain(models, target, value("domain_force"), report, "security", where)
    if node.get("id"):
        xmlids.define(node.get("id"))


def check_access_csv(path: Path, models, xmlids: XmlIds, report: Report) -> None:
    expected = ["id", "name", "model_id:id", "group_id:id", "perm_read", "perm_write",
                "perm_create", "perm_unlink"]
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != expected:
        report.fail("security", path, f"header must be {','.join(expected)}")
        return
    valid_models = {f"model_{n.replace('.', '_')}": n for n, m in models.items() if m.new}
    covered, seen = set(), set()
    for number, row in enumerate(rows[1:], start=2):
        where = f"{path.name}:{number}"
        if len(row) != len(expected):
            report.fail("security", where, f"has {len(row)} columns, expected {len(expected)}")
            continue
        rid, _, model_ref, group_ref, *perms = row
        if rid in seen:
            report.fail("security", where, f"duplicate id {rid!r}")
        seen.add(rid)
        local = model_ref.split(".", 1)[1] if model_ref.startswith(f"{MODULE}.") else model_ref
        if local in valid_models:
            covered.add(valid_models[local])
            report.ok()
        elif f"{model_ref}" in KNOWN_EXTERNAL_XMLIDS:
            report.ok()
        else:
            report.fail("security", where, f"model {model_ref!r} is not a model of the addon "
                        "(Odoo would refuse the line: no such model)")
        if group_ref:
            xmlids.check(group_ref, report, where, "group")
        if any(p not in ("0", "1") for p in perms):
            report.fail("security", where, "permissions must be 0 or 1")
        xmlids.define(rid)
    for name, info in sorted(models.items()):
        if info.new and name not in covered:
            kind = "wizard" if info.transient else "model"
            report.fail("security", path, f"{kind} {name} has no access row: Odoo would warn "
                        "and nobody but the superuser could use it")


def check_view_coverage(models, views, report: Report) -> None:
    # Lines edited inside their parent's form (one2many targets) need no views.
    lines = {f.comodel for info in models.values() for f in info.fields.values()
             if f.ftype == "One2many" and info.transient}
    for name, info in sorted(models.items()):
        if not info.new or name in lines:
            continue
        have = views.get(name, set())
        needed = {"form"} if info.transient else {"tree", "form", "search"}
        for kind in sorted(needed - have):
            report.fail("views", name, f"has no {kind} view")
        if needed <= have:
            report.ok()


# ---------------------------------------------------------------------------
# Translations
# ---------------------------------------------------------------------------
def python_strings(addon: Path) -> set[str]:
    found = set()
    for path in addon.rglob("*.py"):
        if "tests" in path.relative_to(addon).parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "_" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def check_i18n(addon: Path, models, report: Report) -> None:
    pot_path = addon / "i18n" / f"{MODULE}.pot"
    fr_path = addon / "i18n" / "fr.po"
    try:
        pot = polib.pofile(str(pot_path))
        report.ok()
    except (OSError, ValueError) as exc:
        report.fail("i18n", pot_path, f"does not parse: {exc}")
        return
    try:
        fr = polib.pofile(str(fr_path))
        report.ok()
    except (OSError, ValueError) as exc:
        report.fail("i18n", fr_path, f"does not parse: {exc}")
        return
    pot_ids = {e.msgid for e in pot if not e.obsolete}
    for text in sorted(python_strings(addon) - pot_ids):
        report.fail("i18n", pot_path, f"missing the code string {text[:60]!r}: regenerate the "
                    ".pot (odoo-bin --i18n-export)")
    for info in models.values():
        for f in info.fields.values():
            if f.string and f.string not in pot_ids:
                report.fail("i18n", pot_path, f"missing the label {f.string!r} of "
                            f"{info.name}.{f.name}: regenerate the .pot")
    translations = {e.msgid: e for e in fr if not e.obsolete}
    for msgid in sorted(pot_ids):
        entry = translations.get(msgid)
        if entry is None:
            report.fail("i18n", fr_path, f"has no entry for {msgid[:60]!r}")
        elif not entry.msgstr.strip() or "fuzzy" in entry.flags:
            report.fail("i18n", fr_path, f"does not translate {msgid[:60]!r}")
        elif placeholders(msgid) != placeholders(entry.msgstr):
            report.fail("i18n", fr_path, f"placeholders differ for {msgid[:60]!r}: "
                        f"{placeholders(msgid)} vs {placeholders(entry.msgstr)}")
        else:
            report.ok()
    header = fr.metadata.get("Language", "")
    if header != "fr":
        report.fail("i18n", fr_path, f"Language header is {header!r}, expected 'fr'")


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------
def run_checks(addon: Path, shared: Path) -> Report:
    report = Report(addon)
    if not (addon / "__manifest__.py").is_file():
        report.fail("manifest", addon, "no __manifest__.py: is this the addon folder?")
        return report
    rng_dir = shared / "odoo17-rng"
    if not (rng_dir / "tree_view.rng").is_file():
        report.fail("rng", rng_dir, "Odoo 17 view schemas not found: set SHARED_DIR to the "
                    "folder holding odoo17-rng/")
    check_python(addon, report)
    manifest = load_manifest(addon, report)
    check_manifest(addon, manifest, report)
    check_layout(addon, manifest, report)
    models = parse_models(addon, report)
    check_models(models, report)
    views = check_xml(addon, manifest, models, report, rng_dir)
    check_view_coverage(models, views, report)
    check_i18n(addon, models, report)
    return report


def print_report(report: Report, label: str = "addon checks") -> None:
    for line in report.failures:
        print(line)
    print(f"{label}: {report.checks} passed, {len(report.failures)} failed")


# Each break: (name, file, old text, new text, expected substring of a failure).
BREAKS = [
    ("unknown field in a view", "views/whatsapp_message_views.xml",
     '<field name="wamid"/>', '<field name="wamid_typo"/>',
     "field 'wamid_typo' does not exist on whatsapp.message"),
    ("unknown field in a sub-view", "views/whatsapp_conversation_views.xml",
     '<field name="button_title" optional="hide"/>', '<field name="no_such" optional="hide"/>',
     "field 'no_such' does not exist on whatsapp.message"),
    ("missing ref in a menu", "views/whatsapp_menus.xml",
     'action="whatsapp_message_action"', 'action="whatsapp_message_action_missing"',
     "'whatsapp_message_action_missing' is not defined"),
    ("data file not listed", "__manifest__.py",
     '"views/whatsapp_menus.xml",\n', '',
     "is not listed in the manifest"),
    ("ref used before it is defined", "views/whatsapp_account_views.xml",
     'ref="whatsapp_account_view_search"', 'ref="whatsapp_template_view_search"',
     "'whatsapp_template_view_search' is not defined before it is used"),
    ("bad model in the access file", "security/ir.model.access.csv",
     "model_whatsapp_message,group_whatsapp_user", "model_whatsapp_mesage,group_whatsapp_user",
     "'model_whatsapp_mesage' is not a model of the addon"),
    ("model without access row", "security/ir.model.access.csv",
     "access_whatsapp_button_action_user,", "#",
     None),  # replaced below by a line removal
    ("attrs attribute", "views/whatsapp_campaign_views.xml",
     'string="Pause"', 'string="Pause" attrs="{\'invisible\': [(\'state\', \'=\', \'draft\')]}"',
     "uses attrs="),
    ("states attribute", "views/whatsapp_campaign_views.xml",
     'string="Resume"', 'string="Resume" states="paused"', "uses states="),
    ("schema violation", "views/whatsapp_account_views.xml",
     '<tree decoration-muted="not active"', '<tree editable="sideways" decoration-muted="not active"',
     "does not match Odoo 17's tree_view.rng"),
    ("Python syntax error", "models/whatsapp_message.py",
     "class WhatsappMessage(models.Model):", "class WhatsappMessage(models.Model:",
     "does not compile"),
    ("missing data file", "__manifest__.py",
     '"views/whatsapp_menus.xml",', '"views/whatsapp_menus.xml",\n        "views/missing.xml",',
     "'views/missing.xml' does not exist"),
    ("unknown button method", "views/whatsapp_campaign_views.xml",
     'name="action_start"', 'name="action_strat"', "button 'action_strat': no such method"),
    ("unknown field in a modifier", "views/whatsapp_account_views.xml",
     'invisible="not paused"', 'invisible="not pausd"', "field 'pausd' does not exist"),
    ("unknown field in a filter domain", "views/whatsapp_message_views.xml",
     "[('direction', '=', 'out')]", "[('directon', '=', 'out')]",
     "field 'directon' does not exist on whatsapp.message"),
    ("unknown group", "views/whatsapp_menus.xml",
     'groups="whatsapp_sidecar.group_whatsapp_manager"', 'groups="whatsapp_sidecar.group_nope"',
     "'whatsapp_sidecar.group_nope' is not defined"),
    ("unknown comodel", "models/whatsapp_message.py",
     '"whatsapp.conversation", ondelete="set null"', '"whatsapp.conversaton", ondelete="set null"',
     "unknown comodel 'whatsapp.conversaton'"),
    ("broken related path", "models/whatsapp_template.py",
     'related="account_id.company_id"', 'related="account_id.compny_id"',
     "field 'compny_id' does not exist on whatsapp.account"),
    ("fr.po does not parse", "i18n/fr.po",
     '#. module: whatsapp_sidecar\n', 'msgid "x" garbage\n#. module: whatsapp_sidecar\n',
     "does not parse"),
    ("untranslated entry", "i18n/fr.po", None, None, "does not translate"),
    ("excludes dropped", "__manifest__.py",
     '"excludes": ["whatsapp"],', '"excludes": [],', "excludes must list 'whatsapp'"),
]


def apply_break(addon: Path, name, rel, old, new) -> None:
    path = addon / rel
    text = path.read_text(encoding="utf-8")
    if name == "model without access row":
        lines = [ln for ln in text.splitlines(keepends=True)
                 if not ln.startswith("access_whatsapp_button_action_")]
        path.write_text("".join(lines), encoding="utf-8")
        return
    if name == "untranslated entry":
        po = polib.pofile(str(path))
        entry = next(e for e in po if e.msgid and e.msgstr)
        entry.msgstr = ""
        po.save(str(path))
        return
    if old not in text:
        raise AssertionError(f"self-test break {name!r}: {old!r} not found in {rel}")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def self_test(addon: Path, shared: Path) -> int:
    problems = []
    with tempfile.TemporaryDirectory(prefix="addon_checks_") as tmp:
        pristine = Path(tmp) / MODULE
        shutil.copytree(addon, pristine, ignore=shutil.ignore_patterns("__pycache__"))
        base = run_checks(pristine, shared)
        if base.failures:
            problems.append(f"the untouched copy fails {len(base.failures)} checks")
        for name, rel, old, new, expected in BREAKS:
            copy = Path(tmp) / f"case_{abs(hash(name))}" / MODULE
            shutil.copytree(pristine, copy)
            try:
                apply_break(copy, name, rel, old, new)
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            result = run_checks(copy, shared)
            if name == "model without access row":
                expected = "whatsapp.button.action has no access row"
            if not any(expected in line for line in result.failures):
                problems.append(f"break {name!r} was not caught (expected {expected!r}); "
                                f"got: {result.failures[:3]}")
            else:
                print(f"self-test: caught {name}")
    for problem in problems:
        print(f"FAIL [self-test] {problem}")
    total = len(BREAKS) + 1
    print(f"addon checks self-test: {total - len(problems)} passed, {len(problems)} failed")
    return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addon", type=Path, default=DEFAULT_ADDON)
    parser.add_argument("--self-test", action="store_true",
                        help="break copies of the addon and check that each break is caught")
    args = parser.parse_args(argv)
    shared = Path(os.environ.get("SHARED_DIR") or REPO.parent / "shared")
    addon = args.addon.resolve()
    if args.self_test:
        return self_test(addon, shared)
    report = run_checks(addon, shared)
    print_report(report)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
