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
