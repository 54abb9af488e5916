"""Payers, patients and kit templates."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import CARE_READERS, CARE_WRITERS, requires
from inventory.blueprint import ID, Blueprint
from inventory.care import service
from inventory.care.models import Patient, Payer
from inventory.care.schemas import (
    KitTemplateArgs,
    KitTemplateIn,
    KitTemplateOut,
    KitTemplatePage,
    PatientArgs,
    PatientIn,
    PatientOut,
    PatientPage,
    PatientPatch,
    PayerArgs,
    PayerIn,
    PayerOut,
    PayerPage,
    PayerPatch,
    RateInForceArgs,
    RateOut,
)
from inventory.web import ETAG_HEADER, check_if_match, etag_of, idempotent, session, versioned_patch

blp = Blueprint(
    "care", __name__, url_prefix="/api/v1", description="Payers, patients and kit templates"
)


def _payer_etag(payer: Payer) -> str:
    return etag_of("payer", payer.id, payer.version)


def _patient_etag(patient: Patient) -> str:
    return etag_of("patient", patient.id, patient.version)


def _with_etag(body: Any, etag: str, status: int = 200) -> tuple[Any, int, dict[str, str]]:
    return body, status, {"ETag": etag}


@blp.route("/payers")
class Payers(MethodView):
    @requires(*CARE_READERS)
    @blp.arguments(PayerArgs, location="query")
    @blp.response(200, PayerPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List payers with their fee schedules."""
        return service.list_payers(session(), args)

    @requires(*CARE_WRITERS)
    @idempotent
    @blp.arguments(PayerIn)
    @blp.response(201, PayerOut, headers=ETAG_HEADER)
    def post(self, fields: dict[str, Any]) -> Any:
        """Add a payer with its fee schedule.

        `modifier_multipliers` defaults to SH 0.5000 and SJ 0.0000. Two rates with the same
        `hcpcs` and `effective_from` are refused (422); a name already in use is 409.
        """
        payer = service.create_payer(session(), fields)
        return _with_etag(payer, _payer_etag(payer), 201)


@blp.route(f"/payers/<{ID}:payer_id>")
class PayerById(MethodView):
    @requires(*CARE_READERS)
    @blp.response(200, PayerOut, headers=ETAG_HEADER)
    def get(self, payer_id: int) -> Any:
        """Read one payer and its fee schedule."""
        payer = service.get_payer(session(), payer_id)
        return _with_etag(payer, _payer_etag(payer))

    @requires(*CARE_WRITERS)
    @versioned_patch
    @blp.arguments(PayerPatch)
    @blp.response(200, PayerOut, headers=ETAG_HEADER)
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, changes: dict[str, Any], payer_id: int) -> Any:
        """Edit a payer (honours If-Match).

        `name` renames the payer; `modifier_multipliers` replaces the whole modifier map.
        `rates` are upserted by (`hcpcs`, `effective_from`): a rate already in the schedule
        gets the new `rate` and `counting`, a new one is added, and none is deleted (past
        claims were priced with them; supersede a rate with a later `effective_from`).
        """
        payer = service.get_payer(session(), payer_id)
        check_if_match(_payer_etag(payer))
        payer = service.update_payer(session(), payer, changes)
        return _with_etag(payer, _payer_etag(payer))


@blp.route(f"/payers/<{ID}:payer_id>/rates/in-force")
class PayerRateInForce(MethodView):
    @requires(*CARE_READERS)
    @blp.arguments(RateInForceArgs, location="query")
    @blp.response(200, RateOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any], payer_id: int) -> Any:
        """The payer's rate for an HCPCS code on a date.

        The rate with the latest `effective_from` on or before `date`; 404 when the payer has
        none for that code by then. (An addition to the written contract.)
        """
        payer = service.get_payer(session(), payer_id)
        return service.rate_for(payer, args["hcpcs"], args["date"])


@blp.route("/patients")
class Patients(MethodView):
    @requires(*CARE_READERS)
    @blp.arguments(PatientArgs, location="query")
    @blp.response(200, PatientPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List patients, filtered by site, payer or external reference."""
        return service.list_patients(session(), args)

    @requires(*CARE_WRITERS)
    @idempotent
    @blp.arguments(PatientIn)
    @blp.response(201, PatientOut, headers=ETAG_HEADER)
    def post(self, fields: dict[str, Any]) -> Any:
        """Add a patient.

        Name, address and phone are protected health information: errors and logs name a
        patient by `id` only. An `external_ref` already in use is 409; an unknown `payer_id`
        is 422.
        """
        patient = service.create_patient(session(), fields)
        return _with_etag(patient, _patient_etag(patient), 201)


@blp.route(f"/patients/<{ID}:patient_id>")
class PatientById(MethodView):
    @requires(*CARE_READERS)
    @blp.response(200, PatientOut, headers=ETAG_HEADER)
    def get(self, patient_id: int) -> Any:
        """Read one patient."""
        patient = service.get_patient(session(), patient_id)
        return _with_etag(patient, _patient_etag(patient))

    @requires(*CARE_WRITERS)
    @versioned_patch
    @blp.arguments(PatientPatch)
    @blp.response(200, PatientOut, headers=ETAG_HEADER)
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, changes: dict[str, Any], patient_id: int) -> Any:
        """Edit a patient (honours If-Match).

        `address` replaces the whole address. `site` cannot change once the patient has a
        therapy (409).
        """
        patient = service.get_patient(session(), patient_id)
        check_if_match(_patient_etag(patient))
        patient = service.update_patient(session(), patient, changes)
        return _with_etag(patient, _patient_etag(patient))


@blp.route("/kit-templates")
class KitTemplates(MethodView):
    @requires(*CARE_READERS)
    @blp.arguments(KitTemplateArgs, location="query")
    @blp.response(200, KitTemplatePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List kit templates."""
        return service.list_templates(session(), args)

    @requires(*CARE_WRITERS)
    @idempotent
    @blp.arguments(KitTemplateIn)
    @blp.response(201, KitTemplateOut)
    def post(self, fields: dict[str, Any]) -> Any:
        """Add a kit template: supplies per infusion day, equipment per course.

        Every item must exist (422 naming `lines.N.item_id` or `equipment.N.item_id`);
        `lines` hold supplies and `equipment` holds pumps and poles, each item at most once.
        A name already in use is 409.
        """
        return service.create_template(session(), fields)


@blp.route(f"/kit-templates/<{ID}:template_id>")
class KitTemplateById(MethodView):
    @requires(*CARE_READERS)
    @blp.response(200, KitTemplateOut)
    def get(self, template_id: int) -> Any:
        """Read one kit template."""
        return service.get_template(session(), template_id)
