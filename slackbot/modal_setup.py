"""``/sla setup``: watch a channel, and edit its tier's escalation ladder, from a modal.

The same data the admin edits: the ``WatchedChannel`` row (tier, intake mode,
response mode, look-back) and the tier's default ``SlaPolicy`` with its
``EscalationStep`` rows. Nothing is written until every field is valid; then
everything is written in one transaction, each change recorded in the admin
log with who made it. Tickets armed from then on get the new ladder; a
ticket already armed keeps the copy it was armed with.

Steps that need more than a delay, a target and a message (a page, a named
engineer) are shown but edited in the admin. Picking another tier reloads the
ladder (``views.update``), so a ladder is never saved onto the wrong tier.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from base.durations import duration_input_text, duration_parse
from base.formatting import duration_text
from base.pages import provider_label
from calendars.targets import SLACK_KINDS, TargetKind
from escalation.models import EscalationStep, SlaPolicy
from slackbot.modal_kit import (
    checkbox_input,
    context,
    divider,
    form_values,
    header,
    modal,
    modal_update,
    notice_view,
    section,
    select_input,
    text_input,
    view_metadata,
)
from slackbot.staff import ADDED, CHANGED, DELETED, SlackActor, config_change_record
from tickets.models import IntakeMode, ResponseMode, Tier, WatchedChannel

CALLBACK_ID = "slabuddy_setup"
TITLE = "Set up this channel"
TARGET_LABELS = [(kind.value, kind.label) for kind in SLACK_KINDS]
MAX_LOOKBACK_MINUTES = 7 * 24 * 60
NEW = "new"


def _step_block(tier_id: int, level: int | str, field: str) -> str:
    return f"t{tier_id}.l{level}.{field}"


def _default_policy(tier: Tier) -> SlaPolicy | None:
    return SlaPolicy.objects.filter(tier=tier, priority="").first()


def _editable(step: EscalationStep) -> bool:
    return step.target_kind in SLACK_KINDS


def _step_what(step: EscalationStep) -> str:
    """'pages PagerDuty for high, urgent tickets', 'notifies Alice', 'every support engineer on shift'."""
    if step.target_kind == TargetKind.PAGE:
        only = f" for {', '.join(step.page_priorities)} tickets" if step.page_priorities else ""
        return f"pages {provider_label(step.page_provider)}{only}"
    if step.target_kind == TargetKind.ENGINEER:
        return f"notifies {step.engineer or 'a named engineer'}"
    return TargetKind(step.target_kind).label.lower()


def _read_only_line(step: EscalationStep) -> str:
    when = duration_text(step.delay)
    return f"*Level {step.level}* after {when} {_step_what(step)}. Change it in the admin."


def setup_view(*, channel_id: str, channel_name: str, tier_id: int | None = None) -> dict[str, Any] | None:
    """The setup modal for a channel (None when there is no tier to choose from)."""
    tiers = list(Tier.objects.order_by("name")[:100])
    if not tiers:
        return None
    channel = WatchedChannel.objects.filter(slack_channel_id=channel_id).select_related("tier").first()
    by_id = {t.pk: t for t in tiers}
    tier = by_id.get(tier_id) or (channel.tier if channel else None) or tiers[0]
    if channel is None:
        status = f"*#{channel_name}* (`{channel_id}`) is not watched yet."
    else:
        state = "watched" if channel.active else "*not* watched (switched off)"
        status = f"*#{channel.name}* (`{channel_id}`) is {state}, as tier *{channel.tier}*."
    blocks = [
        section(status),
        select_input("tier", "Customer tier", [(str(t.pk), t.name) for t in tiers], initial=str(tier.pk),
                     dispatch=True, hint="Picking another tier loads that tier's ladder below."),
        select_input("intake", "Which messages are tickets", list(IntakeMode.choices),
                     initial=channel.intake_mode if channel else IntakeMode.HELPDESK_BOT),
        select_input("response", "What counts as a response", list(ResponseMode.choices),
                     initial=channel.response_mode if channel else ResponseMode.SLACK_THREAD),
        text_input("lookback", "Look-back (minutes)", max_length=6,
                   initial=str(channel.lookback_minutes if channel else 120),
                   hint="Messages older than this are never tickets."),
        checkbox_input("watch", "Watching", "Watch this channel for tickets",
                       checked=channel.active if channel else True),
        divider(),
        *_ladder_blocks(tier),
    ]
    policy = _default_policy(tier)
    editable = [s.level for s in policy.steps.order_by("level") if _editable(s)] if policy else []
    metadata = {"channel": channel_id, "name": channel_name[:80], "tier": tier.pk, "levels": editable}
    return modal(callback_id=CALLBACK_ID, title=TITLE, blocks=blocks, metadata=metadata)


def _ladder_blocks(tier: Tier) -> list[dict[str, Any]]:
    policy = _default_policy(tier)
    channels = WatchedChannel.objects.filter(tier=tier, active=True).count()
    blocks = [
        header(f"Escalation ladder of {tier.name}"),
        context(
            f"Shared by every channel of this tier ({channels} watched now). Tickets armed from now on "
            "get it; tickets already armed keep the ladder they were armed with. "
            "Empty a level's delay to remove it."
        ),
    ]
    if policy is not None and not policy.active:
        blocks.append(context(":warning: This policy is switched off in the admin: nothing escalates."))
    others = SlaPolicy.objects.filter(tier=tier).exclude(priority="").order_by("priority")
    if others.exists():
        names = ", ".join(p.get_priority_display().lower() for p in others)
        blocks.append(context(f"{tier.name} also has policies for {names} tickets: edit those in the admin."))
    steps = list(policy.steps.order_by("level")) if policy else []
    for step in steps:
        if not _editable(step):
            blocks.append(section(_read_only_line(step)))
            continue
        blocks += [
            section(f"*Level {step.level}*"),
            text_input(_step_block(tier.pk, step.level, "delay"), "After the ticket opened",
                       initial=duration_input_text(step.delay), optional=True, max_length=40,
                       placeholder="10m, 1h 30m, 00:10:00"),
            select_input(_step_block(tier.pk, step.level, "target"), "Notify", TARGET_LABELS,
                         initial=step.target_kind),
            text_input(_step_block(tier.pk, step.level, "message"), "Message", initial=step.message_template,
                       multiline=True, optional=True, placeholder="Empty: the default escalation message"),
        ]
    blocks += [
        section("*Add a level* (optional)"),
        text_input(_step_block(tier.pk, NEW, "delay"), "After the ticket opened", optional=True,
                   max_length=40, placeholder="e.g. 1h"),
        select_input(_step_block(tier.pk, NEW, "target"), "Notify", TARGET_LABELS,
                     initial=TargetKind.HEAD_OF_SUCCESS, optional=True),
        text_input(_step_block(tier.pk, NEW, "message"), "Message", multiline=True, optional=True,
                   placeholder="Empty: the default escalation message"),
    ]
    return blocks


def setup_tier_changed(*, payload: dict[str, Any]) -> str:
    """Another tier was picked: show its ladder (the other fields keep what was typed)."""
    view = payload.get("view") or {}
    meta = view_metadata(view)
    picked = form_values(view).get("tier")
    try:
        tier_id = int(str(picked))
    except ValueError:
        return "no tier picked"
    fresh = setup_view(channel_id=str(meta.get("channel") or ""), channel_name=str(meta.get("name") or ""),
                       tier_id=tier_id)
    if fresh is None:
        return "no tiers"
    error = modal_update(view_id=str(view.get("id") or ""), view_hash=str(view.get("hash") or ""), view=fresh)
    return f"ladder reloaded{': ' + error if error else ''}"


# --- the submission ------------------------------------------------------------------


@dataclass(frozen=True)
class LevelEdit:
    level: int
    delay: timedelta | None  # None: remove the level
    target_kind: str
    message: str


@dataclass(frozen=True)
class SetupForm:
    channel_id: str
    channel_name: str
    tier: Tier
    intake_mode: str
    response_mode: str
    lookback_minutes: int
    active: bool
    levels: list[LevelEdit]


def _template_error(template: str) -> str:
    try:
        list(string.Formatter().parse(template))
    except ValueError:
        return "The message has an unmatched { or }: write {{ and }} for literal braces."
    return ""


def setup_form_check(view: dict[str, Any]) -> tuple[SetupForm | None, dict[str, str]]:
    """Validate every field; the form, or the errors by block id (nothing written either way)."""
    meta, values = view_metadata(view), form_values(view)
    errors: dict[str, str] = {}
    channel_id = str(meta.get("channel") or "")
    tier = Tier.objects.filter(pk=_int(values.get("tier"))).first()
    if tier is None:
        errors["tier"] = "Choose a tier."
    elif tier.pk != meta.get("tier"):
        errors["tier"] = "The ladder below belongs to another tier: pick this tier again to load its ladder."
    intake, response = values.get("intake"), values.get("response")
    if intake not in IntakeMode.values:
        errors["intake"] = "Choose which messages are tickets."
    if response not in ResponseMode.values:
        errors["response"] = "Choose what counts as a response."
    lookback = _int((values.get("lookback") or "").strip())
    if lookback is None or not 1 <= lookback <= MAX_LOOKBACK_MINUTES:
        errors["lookback"] = f"Write a whole number of minutes from 1 to {MAX_LOOKBACK_MINUTES}."
    levels: list[LevelEdit] = []
    if tier is not None and "tier" not in errors:
        levels = _levels_check(tier, meta, values, errors)
    if errors or tier is None or not channel_id:
        if not channel_id:
            errors.setdefault("tier", "This form lost its channel: run /sla setup again.")
        return None, errors
    form = SetupForm(
        channel_id=channel_id, channel_name=str(meta.get("name") or channel_id), tier=tier,
        intake_mode=str(intake), response_mode=str(response), lookback_minutes=int(lookback or 0),
        active="yes" in (values.get("watch") or []), levels=levels,
    )
    return form, errors


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _levels_check(tier: Tier, meta: dict, values: dict, errors: dict[str, str]) -> list[LevelEdit]:
    policy = _default_policy(tier)
    steps = {s.level: s for s in policy.steps.all()} if policy else {}
    shown = [level for level in meta.get("levels") or [] if isinstance(level, int)]
    edits: list[LevelEdit] = []
    for level in [*shown, NEW]:
        delay_block = _step_block(tier.pk, level, "delay")
        raw = (values.get(delay_block) or "").strip()
        target = values.get(_step_block(tier.pk, level, "target")) or TargetKind.HEAD_OF_SUCCESS
        message = values.get(_step_block(tier.pk, level, "message")) or ""
        if not raw:
            if level != NEW:
                edits.append(LevelEdit(level, None, target, message))  # emptied: remove it
            continue
        try:
            delay = duration_parse(raw)
        except ValueError as exc:
            errors[delay_block] = str(exc)
            continue
        if target not in [kind for kind, _ in TARGET_LABELS]:
            errors[_step_block(tier.pk, level, "target")] = "Choose whom this level notifies."
            continue
        problem = _template_error(message)
        if problem:
            errors[_step_block(tier.pk, level, "message")] = problem
            continue
        number = level if level != NEW else max([*steps, *shown, 0]) + 1
        edits.append(LevelEdit(number, delay, target, message))
    # The kept ladder, read-only steps included, must not go back in time.
    ladder = {s.level: s.delay for s in steps.values()}
    for edit in edits:
        if edit.delay is None:
            ladder.pop(edit.level, None)
        else:
            ladder[edit.level] = edit.delay
    previous: tuple[int, timedelta] | None = None
    for level in sorted(ladder):
        if previous is not None and ladder[level] < previous[1]:
            where = next((n for n in (level, previous[0]) if n in shown), NEW)  # a field on the form
            errors.setdefault(_step_block(tier.pk, where, "delay"), (
                f"Level {level} ({duration_text(ladder[level])}) cannot come before level {previous[0]} "
                f"({duration_text(previous[1])} after opening)."))
        previous = (level, ladder[level])
    return edits


def setup_form_apply(form: SetupForm, *, actor: SlackActor) -> list[str]:
    """Write the channel and the ladder in one transaction, each change in the admin log.
    Returns what changed, for the confirmation."""
    done: list[str] = []
    with transaction.atomic():
        done += _channel_apply(form, actor=actor)
        done += _ladder_apply(form, actor=actor)
    return done


def _channel_apply(form: SetupForm, *, actor: SlackActor) -> list[str]:
    wanted = {"name": form.channel_name[:100], "tier": form.tier, "intake_mode": form.intake_mode,
              "response_mode": form.response_mode, "lookback_minutes": form.lookback_minutes,
              "active": form.active}
    channel = WatchedChannel.objects.select_for_update().filter(slack_channel_id=form.channel_id).first()
    if channel is None:
        channel = WatchedChannel.objects.create(slack_channel_id=form.channel_id, **wanted)
        config_change_record(actor=actor, obj=channel, action=ADDED, message="Added (/sla setup).")
        return [f"now watching #{channel.name} as {form.tier.name}"]
    changed = [name for name, value in wanted.items() if getattr(channel, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(channel, name, wanted[name])
    channel.save(update_fields=changed)
    labels = [str(WatchedChannel._meta.get_field(name).verbose_name) for name in changed]
    config_change_record(actor=actor, obj=channel, action=CHANGED,
                         message=f"Changed {', '.join(labels)} (/sla setup).")
    return [f"#{channel.name}: changed {', '.join(labels)}"]


def _ladder_apply(form: SetupForm, *, actor: SlackActor) -> list[str]:
    if not form.levels:
        return []
    policy = _default_policy(form.tier)
    done: list[str] = []
    if policy is None:
        if all(edit.delay is None for edit in form.levels):
            return []
        policy = SlaPolicy.objects.create(tier=form.tier, priority="", name=f"{form.tier.name} (default)")
        config_change_record(actor=actor, obj=policy, action=ADDED, message="Added (/sla setup).")
    steps = {s.level: s for s in EscalationStep.objects.select_for_update().filter(policy=policy)}
    for edit in form.levels:
        step = steps.get(edit.level)
        if edit.delay is None:
            if step is not None:
                config_change_record(actor=actor, obj=step, action=DELETED, message="Deleted (/sla setup).")
                step.delete()
                done.append(f"removed level {edit.level}")
            continue
        if step is None:
            step = EscalationStep.objects.create(policy=policy, level=edit.level, delay=edit.delay,
                                                 target_kind=edit.target_kind, message_template=edit.message)
            config_change_record(actor=actor, obj=step, action=ADDED, message="Added (/sla setup).")
            done.append(f"added level {edit.level}")
            continue
        wanted = {"delay": edit.delay, "target_kind": edit.target_kind, "message_template": edit.message}
        if edit.target_kind != step.target_kind and step.target_kind == TargetKind.USER_GROUP:
            wanted["target_ref"] = ""  # the group id belonged to the user-group target
        changed = [name for name, value in wanted.items() if getattr(step, name) != value]
        if changed:
            for name in changed:
                setattr(step, name, wanted[name])
            step.save(update_fields=changed)
            labels = [str(EscalationStep._meta.get_field(name).verbose_name) for name in changed]
            config_change_record(actor=actor, obj=step, action=CHANGED,
                                 message=f"Changed {', '.join(labels)} (/sla setup).")
            done.append(f"level {edit.level}: changed {', '.join(labels)}")
    return done


def setup_submission(*, payload: dict[str, Any], actor: SlackActor) -> dict[str, Any]:
    """Answer a submitted setup form: field errors, or the saved result."""
    form, errors = setup_form_check(payload.get("view") or {})
    if form is None:
        return {"response_action": "errors", "errors": errors}
    done = setup_form_apply(form, actor=actor)
    return {"response_action": "update", "view": _saved_view(form, done)}


def _saved_view(form: SetupForm, done: list[str]) -> dict[str, Any]:
    policy = _default_policy(form.tier)
    steps = list(policy.steps.order_by("level")) if policy else []
    ladder = "\n".join(
        f"• Level {s.level} after {duration_text(s.delay)}: {_step_what(s)}" for s in steps
    ) or "• no levels: nothing escalates"
    watching = "watched" if form.active else "*not* watched"
    changes = "; ".join(done) if done else "nothing changed"
    text = (
        f":white_check_mark: Saved ({changes}).\n"
        f"*#{form.channel_name}* is {watching} as *{form.tier.name}*.\n"
        f"*Ladder of {form.tier.name}*\n{ladder}\n"
        "Tickets armed from now on use it; tickets already armed keep theirs. "
        "If I am not in the channel yet, invite me: `/invite @SLA Buddy`. "
        f"Everything is also in the admin: {settings.SITE_URL}/admin/"
    )
    return notice_view(callback_id=CALLBACK_ID + "_saved", title="Channel set up", text=text)
