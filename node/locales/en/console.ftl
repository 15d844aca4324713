# The node console's messages, English. Every message here must be in id/console.ftl too
# (a unit test checks). Placeables: { $name }.

app-name = VRS node console
skip-to-content = Skip to content
nav-label = Main
language-label = Language
footer = This console serves this node's own staff only. Nothing shown here leaves the node.
sign-out = Sign out
back-home = Back to the start page

## roles
role-clerk = clerk
role-reviewer = reviewer
role-admin = admin

## navigation
nav-status = Status
nav-budget = Budget
nav-audit = Audit log
nav-changes = Change log
nav-users = Users

## sign in
sign-in-title = Sign in
sign-in-intro = Sign in with the account your node's administrator gave you.
sign-in = Sign in
field-username = Username
field-password = Password
sign-in-wrong = Wrong username or password.
sign-in-locked = This account is locked after too many wrong passwords. Ask an administrator to unlock it, or try again later.
sign-in-disabled = This account is disabled. Ask an administrator.
sign-in-throttled = Too many failed sign-ins in the last minute. Wait a minute and try again.

## refusals
forbidden-title = Not allowed
forbidden-message = Your role does not allow this page.
not-found-title = Not found
not-found-message = There is no such page.
bad-token-title = Form expired
bad-token-message = This form could not be checked (it expired, or it did not come from this console). Nothing was changed. Go back, reload the page and try again.
internal-title = Something went wrong
internal-message = The console could not finish this request. Nothing was changed. The node's log has the details.
throttled-title = Too many attempts
throttled-message = Too many failed sign-ins in the last minute.

## states
state-ok = OK
state-warn = Attention
state-fail = Problem
none-yet = none yet
cannot-read = cannot be read (see the node's log)
never = never

## status
status-title = Node status
status-country = Country
status-protection = Protection
protection-zcdp = zCDP: every released figure is noised and charged to a privacy-loss budget
protection-rules = rules_v1: NOT protected against a caller who asks many different questions
status-records = Records in the store
records-value = { $incidents } incidents, { $statistics } statistics rows
status-period = Months held
status-last-import = Last import
last-import-value = { $file } at { $at }: { $imported } imported, { $rejected } rejected
status-certificate = Federation certificate
certificate-none = no [tls] section: the node cannot serve the federation
certificate-expires = expires { $date } ({ $days } days left)
status-callers = Allowed callers
callers-none = none: no coordinator may query this node
status-audit = Audit log
audit-intact = hash chain intact: { $entries } entries, head { $head }…
audit-broken = hash chain BROKEN at entry { $seq }: { $problem }
audit-none = no audit log yet (it is made when the node first serves)
status-audit-key = Audit key (signs receipts)
audit-key-bad = not an Ed25519 key: check the node
status-approval = Approval of queries
approval-auto = automatic: queries are answered at once
approval-manual = manual: every new query waits for a reviewer

## audit log
audit-title = Audit log
audit-intro = Every query this node answered, refused or held, newest first. Verify the chain to check no entry was edited, removed or inserted; export it for an auditor.
verify-chain = Verify the chain
export-jsonl = Export (JSON Lines)
filter-outcome = Outcome
filter-caller = Caller
filter-any = any
filter-apply = Show
audit-no-rows = No entries match.
audit-caption = Audit entries, newest first
col-seq = No.
col-time = Time
col-caller = Caller
col-query-id = Query id
col-outcome = Outcome
col-digest = Answer digest
outcome-answered = answered
outcome-pending = held for approval
outcome-cancelled = cancelled
outcome-refused-any = refused
outcome-refused = refused ({ $reason })
caller-none = (no certificate)
older = Older entries

## budget
budget-title = Privacy budget
budget-intro = Each quarter of records has a lifetime budget of ρ = { $total }, shared by all callers. Spent budget never comes back.
budget-rules = This node is in rules_v1 mode: it has no privacy-loss budget and is not protected against many queries.
budget-all = Show every quarter
budget-charged-only = Show only quarters with a charge
budget-none = No quarter has been charged yet.
budget-caption = Budget per reference quarter
col-quarter = Quarter
col-spent = ρ spent
col-left = ρ left
col-used = Used
col-by-caller = Spent by caller
percent = { $n }%

## users
users-title = Users
users-caption = Accounts of this console
users-add = Add a user
field-display-name = Display name
field-role = Role
field-new-password = New password
field-confirm = Password again
hint-username = a–z, 0–9, dot, underscore or hyphen; up to 64 characters
hint-password = 12 to 256 characters; a passphrase of several words is best
col-state = State
col-last-sign-in = Last sign-in
col-actions = Actions
user-active = active
user-disabled = disabled
user-locked = locked
action-disable = Disable
action-enable = Enable
action-unlock = Unlock
action-set-password = Set a new password
action-save = Save
done-added = User { $user } added.
done-disabled = User { $user } disabled; their sessions ended.
done-enabled = User { $user } enabled.
done-unlocked = User { $user } unlocked.
done-password = New password set for { $user }; their sessions ended.
error-username = A username is 1 to 64 characters of a–z, 0–9, dot, underscore or hyphen, starting with a letter or digit.
error-display-name = A display name is 1 to 100 characters, without control characters.
error-password-length = A password is { $min } to { $max } characters.
error-passwords-differ = The two passwords differ.
error-user-exists = This username already exists.
error-last-admin = This is the last enabled administrator: add or enable another one first.
error-role = A role is clerk, reviewer or admin.
error-no-such-user = There is no such user.

## change log
changes-title = Change log
changes-intro = Every sign-in (successful or not), sign-out and change made through this console or the vrs-node user command, in a hash chain.
changes-caption = Changes, newest first
changes-intact = change log intact: { $entries } entries
changes-broken = change log BROKEN at entry { $seq }: { $problem }
col-actor = Who
col-action = What
col-subject = To whom
col-detail = Detail
col-hash = Hash
action-sign-in = signed in
action-sign-in-failed = sign-in failed
action-sign-in-throttled = sign-in throttled
action-sign-out = signed out
action-user-added = user added
action-user-disabled = user disabled
action-user-enabled = user enabled
action-user-locked = account locked
action-user-unlocked = account unlocked
action-password-changed = password changed
action-audit-exported = audit log exported

## months (dates are written day month year)
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December

## workflow: imports, release preview, approval queue (imports.rs, preview.rs, approvals.rs)
import-nav = Imports
import-title = Import records
import-intro = Upload an export (CSV, JSON Lines, XLSX or ODS) in the template's layout or with a mapping. You see what the import would do (rows accepted, rows rejected with their line and reason, duplicates) before anything is stored; then commit it or cancel it.
import-records = Records in the store: { $n }
import-field-file = File to import
import-file-hint = .csv, .jsonl, .ndjson, .xlsx or .ods; at most { $mib } MiB.
import-field-mapping = Mapping
import-mapping-template = none: the template's columns
import-field-mapping-file = Or upload a mapping (TOML)
import-mapping-hint = An uploaded mapping is used instead of the one chosen above.
import-field-sheet = Sheet (spreadsheets only)
import-sheet-hint = Empty: the mapping's sheet, else the first sheet.
import-preview-button = Upload and preview
import-waiting = Uploads waiting for a decision
import-waiting-none = No upload is waiting.
import-waiting-caption = Uploads previewed but not yet committed or cancelled (removed after one hour)
import-waiting-summary = { $imported } new, { $rejected } rejected, { $duplicates } duplicates
import-col-file = File
import-col-by = Uploaded by
import-col-preview = Preview
import-col-line = Line
import-col-reason = Reason
import-preview-title = Import preview
import-preview-intro = Nothing is stored yet. This is what importing this file would do; commit it to store the accepted rows, or cancel.
import-expires = Kept until
import-counts-caption = What the import would do
import-rows = Rows read
import-accepted = Rows accepted (new records)
import-rejected = Rows rejected
import-duplicates = Duplicates (already stored, or earlier in the file)
import-skipped = Rows the mapping skips
import-rejections-caption = Rejected rows, with the line each starts on
import-rejections-omitted = { $n } more rejected rows are counted but not listed.
import-commit-button = Commit: store { $n } records
import-cancel-button = Cancel: store nothing
import-back = Back to imports
import-committed = Imported: { $imported } new records, { $rejected } rows rejected, { $duplicates } duplicates.
import-cancelled = The upload was cancelled. Nothing was imported.
import-error-no-file = Choose a file to import.
import-error-type = This kind of file cannot be imported: use .csv, .jsonl, .ndjson, .xlsx or .ods.
import-error-form = The upload could not be read as this page's form. Nothing was stored; try again.
import-error-too-many = { $n } uploads are already waiting: commit or cancel one first.
import-error-mapping = The mapping cannot be used: { $reason }
import-error-file = This file cannot be imported: { $reason }. Nothing was stored.
import-error-changed = The stored upload is not the file that was previewed. Nothing was imported; upload it again.
import-too-large-title = File too large
import-too-large-message = The upload is larger than this console accepts. Nothing was stored. Split the file, or import it with vrs-node import.
action-import-previewed = import previewed
action-import-committed = import committed
action-import-cancelled = import cancelled
preview-nav = Release preview
preview-title = Release preview
preview-intro = This is the node's own view: what this node would release for the question, with one draw of its noise, and what it would cost. Nothing is released, charged or recorded. A coordinator asking the same question gets its own noise and is charged.
preview-field-unit = Unit
preview-field-by = Group by
preview-by-none = (none)
preview-field-from = From
preview-field-to = To
preview-period-hint = YYYY, YYYY-Qn or YYYY-MM; empty: every month the node covers.
preview-field-margins = Also totals (margins)
preview-field-where = Filters
preview-where-hint = DIM=V[,V…]; several separated by semicolons, e.g. mode=sea; origin=MMR,BGD
preview-button = Preview
preview-error = This question cannot be previewed: { $reason }
preview-error-long = A field of this form is too long.
preview-cost = A coordinator asking this would spend ρ { $rho } on each of { $n } quarter(s) ({ $quarters }); { $cells } cells; privacy unit: { $unit }.
preview-sigma = Noise: σ { $sigma } per cell (95% of values within ± { $half }).
preview-refused = It would be refused: quarter { $quarter } has only ρ { $left } left.
preview-budget-caption = Budget of the quarters it touches (all callers)
preview-col-left = ρ left now
preview-col-after = ρ left after it
preview-short = not enough left
preview-table-caption = What the node would release (one draw of the noise)
preview-col-interval = 95% interval
preview-suppressed = suppressed ({ $reason })
preview-bar-suppressed = suppressed
preview-chart-label = Released values, with their 95% intervals
preview-chart-omitted = (the first { $shown } of { $n } cells; the table lists all)
approval-nav = Approvals
approval-title = Approval queue
approval-intro = Every new coordinator query waits here until a reviewer decides. Approving lets the coordinator's next request with the same query id be answered (and charged); denying refuses it.
approval-auto-note = This node answers queries at once ([approval] mode = "auto"): nothing waits here. Queries held earlier are still listed.
approval-held = Waiting for a decision
approval-none = No query is waiting.
approval-caller = Asked by
approval-received = Received
approval-question = Question
approval-cost-label = Would cost
approval-left-label = Would leave
approval-cost = ρ { $rho } on each of { $n } quarter(s): { $quarters }
approval-cost-unknown = cannot be worked out (see the node's log)
approval-cost-rules = no budget (rules_v1 mode)
approval-cost-invalid = this query would be refused as it stands
approval-left = ρ { $after } in the tightest quarter (of the node's budget or this caller's share)
approval-left-short = not enough: ρ { $left } left, so it would be refused
approval-approve = Approve
approval-deny = Deny
approval-approved = Approved { $id }: the coordinator's next request with this id is answered.
approval-denied = Denied { $id }: the coordinator's next request with this id is refused.
approval-error-gone = This query is no longer waiting (decided already, or unknown).
approval-decided-caption = Decided queries (newest first)
approval-state-pending = waiting
approval-state-approved = approved, not yet collected
approval-state-denied = denied
approval-state-answered = approved and answered
approval-words = { $unit } by { $dims }
approval-words-total = { $unit }, one total
approval-and = and
approval-open-end = open
approval-words-period = , { $from } to { $to }
approval-words-filter = , only { $dim }: { $values }
approval-words-margins = , with totals
approval-words-caller = , asked by { $caller }
action-query-approved = query approved
action-query-denied = query denied
