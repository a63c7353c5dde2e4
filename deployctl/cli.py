"""`deployctl`: the delivery toolkit's command line. Thin typer commands over
the typed functions in this package; every command has `--json`, and
`--notify` to send its result to the ops Telegram chat.

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 configuration missing,
4 an outside API failed, 5 refused as unsafe, 64 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown

from deployctl import journal as journal_module
from deployctl.errors import EXIT_USAGE, DeployctlError
from deployctl.health import SmokeConfig, smoke
from deployctl.http import redact
from deployctl.monitor import MonitorConfig, run_monitor
from deployctl.protect import load_rules, protect_apply, protect_verify
from deployctl.release import release_open
from deployctl.report import Report, Result
from deployctl.rollback import RollbackConfig, run_rollback
from deployctl.settings import Settings
from deployctl.status import environment_status
from deployctl.verdict import CheckResult, Verdict
from deployctl.webhook import ensure_long_lived, load_allowed_updates, webhook_set, webhook_verify

app = typer.Typer(
    name="deployctl",
    help="NanoBanana's delivery toolkit: smoke checks, the post-deploy monitor, rollback, "
    "webhook, branch protection, release PRs and the deploy journal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
webhook_app = typer.Typer(help="The Telegram webhook of the staging or production bot.", no_args_is_help=True)
protect_app = typer.Typer(help="Branch protection of main and staging, from a YAML file.", no_args_is_help=True)
release_app = typer.Typer(help="The staging -> main release PR.", no_args_is_help=True)
app.add_typer(webhook_app, name="webhook")
app.add_typer(protect_app, name="protect")
app.add_typer(release_app, name="release")

progress = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for workflows).")]
NotifyOption = Annotated[bool, typer.Option("--notify", help="Also send the result to the ops Telegram chat.")]
EnvOption = Annotated[str, typer.Option("--env", help="Environment: staging or production.")]
ReportFile = Annotated[
    Path | None, typer.Option("--report-file", help="Also write the command's JSON result to this file.")
]
SummaryFile = Annotated[
    Path | None, typer.Option("--summary-file", help="Also append the Markdown result here ($GITHUB_STEP_SUMMARY).")
]


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings.from_env()
    settings: Settings = root.obj
    return settings


@app.callback()
def root(ctx: typer.Context, report_file: ReportFile = None, summary_file: SummaryFile = None) -> None:
    """NanoBanana's delivery toolkit: smoke checks, the post-deploy monitor, rollback,
    webhook, branch protection, release PRs and the deploy journal."""
    ctx.meta["report_file"] = report_file
    ctx.meta["summary_file"] = summary_file


def finish(ctx: typer.Context, report: Report, exit_code: int, *, as_json: bool, notify: bool) -> None:
    """Print (JSON or Markdown), write the files asked for, notify, and exit with the code."""
    settings = settings_of(ctx)
    report_file: Path | None = ctx.meta.get("report_file")
    summary_file: Path | None = ctx.meta.get("summary_file")
    payload = report.to_json()
    markdown = report.to_markdown()
    if as_json:
        out.print_json(json.dumps(payload))
    else:
        out.print(Markdown(markdown))
    if report_file:
        report_file.write_text(json.dumps(payload, indent=2) + "\n")
    if summary_file:
        with summary_file.open("a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    if notify:
        text = markdown + (f"\n{settings.run_url}" if settings.run_url else "")
        settings.notifier().send_message(str(settings.notify_chat_id), redact(text, settings.secrets))
    raise typer.Exit(exit_code)


def _show_round(number: int, results: list[CheckResult]) -> None:
    bad = [f"{r.name}: {r.verdict.value}" for r in results if r.verdict is not Verdict.PASS]
    progress.log(f"round {number}: " + (", ".join(bad) if bad else "all checks pass"))


@app.command("smoke")
def smoke_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Base URL of the deployment, e.g. https://staging.example.com")],
    expect_version: Annotated[str | None, typer.Option(help="Git SHA the health endpoint must report.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the version.")] = 300.0,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 5.0,
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Wait until /api/health reports the expected version, then run the deep check.

    Exit 0 pass, 1 fail, 2 inconclusive (nothing answered).
    """
    settings = settings_of(ctx)
    config = SmokeConfig(version_timeout=timeout, interval=interval)
    with progress.status(f"waiting for {expect_version or 'any version'} at {url}") as status:
        report = smoke(
            settings.app(url),
            url,
            expect_version,
            clock=settings.clock,
            config=config,
            on_wait=lambda result: status.update(f"{result.reason}"),
        )
    finish(
        ctx,
        report,
        report.verdict.exit_code,
        as_json=as_json,
        notify=notify,
    )


@app.command("monitor")
def monitor_command(
    ctx: typer.Context,
    env: EnvOption,
    deployment: Annotated[str | None, typer.Option(help="Railway deployment id of the web service.")] = None,
    expect_version: Annotated[str | None, typer.Option(help="Git SHA to expect (default: the deployment's).")] = None,
    duration: Annotated[float, typer.Option(help="Seconds to watch.")] = MonitorConfig.duration,
    interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = MonitorConfig.interval,
    failure_limit: Annotated[int, typer.Option(help="Consecutive failures that fail a check.")] = 3,
    version_timeout: Annotated[float, typer.Option(help="Seconds the new version may take to serve.")] = 120.0,
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Watch a fresh deployment and give a verdict: pass, fail or inconclusive.

    Each round measures the health and version, the deep health (worker and beat
    heartbeats), this deployment's error-level logs, the HTTP 5xx rate and the
    Telegram webhook. Exit 0 pass, 1 fail, 2 inconclusive. The JSON says whether a rollback would help.
    """
    settings = settings_of(ctx)
    config = MonitorConfig(
        duration=duration, interval=interval, failure_limit=failure_limit, version_timeout=version_timeout
    )
    report = run_monitor(
        settings,
        environment=env,
        deployment_id=deployment,
        expected_version=expect_version,
        config=config,
        on_round=_show_round,
    )
    finish(
        ctx,
        report,
        report.verdict.exit_code,
        as_json=as_json,
        notify=notify,
    )


@app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    env: EnvOption,
    deployment: Annotated[str | None, typer.Option(help="The bad web deployment (default: the newest).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the old version to serve.")] = 300.0,
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Roll every service back to the last good deployment and open a revert PR.

    Waits until the old version serves; redeploys it when its image is out of
    retention; never pushes to a protected branch. Exit 0 done, 1 the rollback
    failed, 2 rolled back but the revert PR was not opened.
    """
    settings = settings_of(ctx)
    with progress.status("rolling back") as status:
        report = run_rollback(
            settings,
            environment=env,
            deployment_id=deployment,
            config=RollbackConfig(timeout=timeout),
            on_wait=lambda services: status.update(", ".join(f"{s.service}: {s.status}" for s in services)),
        )
    finish(
        ctx,
        report,
        report.exit_code,
        as_json=as_json,
        notify=notify,
    )


@app.command("notify")
def notify_command(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The message (default: read --file).")] = None,
    file: Annotated[Path | None, typer.Option(help="Send this file's text instead.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send a message to the ops Telegram chat."""
    settings = settings_of(ctx)
    message = file.read_text() if file else text
    if not message:
        raise typer.BadParameter("give the message as an argument or with --file")
    settings.notifier().send_message(str(settings.notify_chat_id), redact(message, settings.secrets))
    finish(
        ctx, Result("notify", Verdict.PASS, "Sent to the ops chat", [message[:200]]), 0, as_json=as_json, notify=False
    )


@app.command("status")
def status_command(
    ctx: typer.Context, env: EnvOption, as_json: JsonOption = False, notify: NotifyOption = False
) -> None:
    """Deployments per service in an environment, with their versions."""
    settings = settings_of(ctx)
    result = environment_status(settings.railway(), environment=env, services=settings.services)
    finish(ctx, result, result.exit_code, as_json=as_json, notify=notify)


@app.command("journal")
def journal_command(
    ctx: typer.Context,
    env: EnvOption,
    what: Annotated[str, typer.Option(help="What happened, e.g. 'deploy' or 'rollback'.")] = "deploy",
    version: Annotated[str | None, typer.Option(help="The deployed git SHA.")] = None,
    report: Annotated[list[Path] | None, typer.Option(help="A JSON report of monitor/rollback/smoke.")] = None,
    link: Annotated[list[str] | None, typer.Option(help="A link to keep with the record.")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where the journal files live.")] = Path("deploy-journal"),
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Append a deploy record (what, when, which checks, verdict, links) as JSON Lines and Markdown."""
    settings = settings_of(ctx)
    reports: list[dict[str, Any]] = [json.loads(path.read_text()) for path in report or [] if path.exists()]
    links = list(link or []) + ([settings.run_url] if settings.run_url else [])
    record = journal_module.build_record(
        when=settings.clock.now(), environment=env, version=version, what=what, reports=reports, links=links
    )
    jsonl, markdown = journal_module.append(directory, record)
    result = Result("journal", Verdict.PASS, f"Journal: {env} {what}", [str(jsonl), str(markdown)], {"record": record})
    finish(ctx, result, 0, as_json=as_json, notify=notify)


@webhook_app.command("set")
def webhook_set_command(
    ctx: typer.Context,
    env: EnvOption,
    allowed_updates_file: Annotated[
        Path, typer.Option(help="JSON list from `python manage.py bot_update_types`.")
    ] = Path("update-types.json"),
    max_connections: Annotated[int, typer.Option(min=1, max=100)] = 40,
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Set the bot's webhook to this environment, with its secret and update types (idempotent)."""
    settings = settings_of(ctx)
    ensure_long_lived(env, settings.base_urls.get(env, ""))
    result = webhook_set(
        settings.bot(),
        environment=env,
        base_url=settings.base_url(env),
        secret=settings.webhook_secret,
        allowed_updates=load_allowed_updates(allowed_updates_file),
        max_connections=max_connections,
    )
    finish(ctx, result, result.exit_code, as_json=as_json, notify=notify)


@webhook_app.command("info")
def webhook_info_command(ctx: typer.Context, env: EnvOption, as_json: JsonOption = False) -> None:
    """Print what Telegram reports about the bot's webhook."""
    settings = settings_of(ctx)
    result = webhook_verify(settings.bot(), environment=env, base_url=settings.base_url(env))
    result.command, result.verdict = "webhook info", Verdict.PASS
    finish(ctx, result, 0, as_json=as_json, notify=False)


@webhook_app.command("verify")
def webhook_verify_command(
    ctx: typer.Context,
    env: EnvOption,
    allowed_updates_file: Annotated[Path | None, typer.Option(help="Also compare the update types.")] = None,
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Check the webhook: this environment's URL, the update types, no delivery error."""
    settings = settings_of(ctx)
    allowed = load_allowed_updates(allowed_updates_file) if allowed_updates_file else None
    result = webhook_verify(settings.bot(), environment=env, base_url=settings.base_url(env), allowed_updates=allowed)
    finish(ctx, result, result.exit_code, as_json=as_json, notify=notify)


RulesOption = Annotated[Path, typer.Option("--file", help="The rules file.")]
DEFAULT_RULES = Path(".github/branch-protection.yml")


@protect_app.command("apply")
def protect_apply_command(
    ctx: typer.Context, file: RulesOption = DEFAULT_RULES, as_json: JsonOption = False, notify: NotifyOption = False
) -> None:
    """Apply the protection rules of main and staging, then read them back."""
    result = protect_apply(settings_of(ctx).github(), load_rules(file))
    finish(ctx, result, result.exit_code, as_json=as_json, notify=notify)


@protect_app.command("verify")
def protect_verify_command(
    ctx: typer.Context, file: RulesOption = DEFAULT_RULES, as_json: JsonOption = False, notify: NotifyOption = False
) -> None:
    """Read the protection back and print any drift from the file (exit 1 on drift)."""
    result = protect_verify(settings_of(ctx).github(), load_rules(file))
    finish(ctx, result, result.exit_code, as_json=as_json, notify=notify)


@release_app.command("open")
def release_open_command(
    ctx: typer.Context,
    head: Annotated[str, typer.Option(help="Branch to release.")] = "staging",
    base: Annotated[str, typer.Option(help="Branch to release into.")] = "main",
    as_json: JsonOption = False,
    notify: NotifyOption = False,
) -> None:
    """Open or update the release PR with notes from the PRs merged since the last release. Never merges."""
    result = release_open(settings_of(ctx).github(), head=head, base=base)
    finish(ctx, result, result.exit_code, as_json=as_json, notify=notify)


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> None:
    """Console entry point: one clear line and a distinct exit code for every error."""
    secrets = (settings or Settings.from_env()).secrets
    try:
        code = app(
            args=list(argv) if argv is not None else None, prog_name="deployctl", standalone_mode=False, obj=settings
        )
    except DeployctlError as exc:
        progress.print(f"deployctl: error: {redact(str(exc), secrets)}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # click's errors, vendored by typer: bad arguments
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        progress.print(f"deployctl: usage error: {message}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
