# Pesan konsol node, Bahasa Indonesia. Setiap pesan di sini juga harus ada di en/console.ftl
# (diperiksa oleh uji unit).

app-name = Konsol node VRS
skip-to-content = Langsung ke isi
nav-label = Utama
language-label = Bahasa
footer = Konsol ini hanya melayani staf node ini sendiri. Tidak ada yang ditampilkan di sini yang keluar dari node.
sign-out = Keluar
back-home = Kembali ke halaman awal

## roles
role-clerk = petugas
role-reviewer = peninjau
role-admin = admin

## navigation
nav-status = Status
nav-budget = Anggaran
nav-audit = Log audit
nav-changes = Log perubahan
nav-users = Pengguna

## sign in
sign-in-title = Masuk
sign-in-intro = Masuk dengan akun yang diberikan oleh administrator node Anda.
sign-in = Masuk
field-username = Nama pengguna
field-password = Kata sandi
sign-in-wrong = Nama pengguna atau kata sandi salah.
sign-in-locked = Akun ini dikunci setelah terlalu banyak kata sandi salah. Minta administrator membukanya, atau coba lagi nanti.
sign-in-disabled = Akun ini dinonaktifkan. Hubungi administrator.
sign-in-throttled = Terlalu banyak upaya masuk yang gagal dalam satu menit terakhir. Tunggu satu menit lalu coba lagi.

## refusals
forbidden-title = Tidak diizinkan
forbidden-message = Peran Anda tidak mengizinkan halaman ini.
not-found-title = Tidak ditemukan
not-found-message = Halaman ini tidak ada.
bad-token-title = Formulir kedaluwarsa
bad-token-message = Formulir ini tidak dapat diperiksa (kedaluwarsa, atau bukan dari konsol ini). Tidak ada yang diubah. Kembali, muat ulang halaman, lalu coba lagi.
internal-title = Terjadi kesalahan
internal-message = Konsol tidak dapat menyelesaikan permintaan ini. Tidak ada yang diubah. Rinciannya ada di log node.
throttled-title = Terlalu banyak percobaan
throttled-message = Terlalu banyak upaya masuk yang gagal dalam satu menit terakhir.

## states
state-ok = Baik
state-warn = Perhatian
state-fail = Masalah
none-yet = belum ada
cannot-read = tidak dapat dibaca (lihat log node)
never = belum pernah

## status
status-title = Status node
status-country = Negara
status-protection = Perlindungan
protection-zcdp = zCDP: setiap angka yang dirilis diberi derau dan dibebankan pada anggaran privasi
protection-rules = rules_v1: TIDAK terlindungi dari pemanggil yang mengajukan banyak pertanyaan berbeda
status-records = Catatan di penyimpanan
records-value = { $incidents } insiden, { $statistics } baris statistik
status-period = Bulan yang tercakup
status-last-import = Impor terakhir
last-import-value = { $file } pada { $at }: { $imported } diimpor, { $rejected } ditolak
status-certificate = Sertifikat federasi
certificate-none = tidak ada bagian [tls]: node tidak dapat melayani federasi
certificate-expires = berakhir { $date } (sisa { $days } hari)
status-callers = Pemanggil yang diizinkan
callers-none = tidak ada: tidak ada koordinator yang boleh mengirim kueri ke node ini
status-audit = Log audit
audit-intact = rantai hash utuh: { $entries } entri, ujung { $head }…
audit-broken = rantai hash RUSAK pada entri { $seq }: { $problem }
audit-none = belum ada log audit (dibuat saat node pertama kali melayani)
status-audit-key = Kunci audit (menandatangani tanda terima)
audit-key-bad = bukan kunci Ed25519: periksa node
status-approval = Persetujuan kueri
approval-auto = otomatis: kueri langsung dijawab
approval-manual = manual: setiap kueri baru menunggu peninjau

## audit log
audit-title = Log audit
audit-intro = Setiap kueri yang dijawab, ditolak atau ditahan node ini, terbaru lebih dulu. Verifikasi rantai untuk memastikan tidak ada entri yang diubah, dihapus atau disisipkan; ekspor untuk auditor.
verify-chain = Verifikasi rantai
export-jsonl = Ekspor (JSON Lines)
filter-outcome = Hasil
filter-caller = Pemanggil
filter-any = semua
filter-apply = Tampilkan
audit-no-rows = Tidak ada entri yang cocok.
audit-caption = Entri audit, terbaru lebih dulu
col-seq = No.
col-time = Waktu
col-caller = Pemanggil
col-query-id = Id kueri
col-outcome = Hasil
col-digest = Ringkasan jawaban
outcome-answered = dijawab
outcome-pending = ditahan untuk persetujuan
outcome-cancelled = dibatalkan
outcome-refused-any = ditolak
outcome-refused = ditolak ({ $reason })
caller-none = (tanpa sertifikat)
older = Entri lebih lama

## budget
budget-title = Anggaran privasi
budget-intro = Setiap kuartal catatan memiliki anggaran seumur hidup ρ = { $total }, dibagi oleh semua pemanggil. Anggaran yang terpakai tidak pernah kembali.
budget-rules = Node ini dalam mode rules_v1: tidak memiliki anggaran privasi dan tidak terlindungi dari banyak kueri.
budget-all = Tampilkan semua kuartal
budget-charged-only = Tampilkan hanya kuartal yang terbebani
budget-none = Belum ada kuartal yang dibebani.
budget-caption = Anggaran per kuartal acuan
col-quarter = Kuartal
col-spent = ρ terpakai
col-left = ρ tersisa
col-used = Terpakai
col-by-caller = Terpakai per pemanggil
percent = { $n }%

## users
users-title = Pengguna
users-caption = Akun konsol ini
users-add = Tambah pengguna
field-display-name = Nama tampilan
field-role = Peran
field-new-password = Kata sandi baru
field-confirm = Ulangi kata sandi
hint-username = a–z, 0–9, titik, garis bawah atau tanda hubung; paling banyak 64 karakter
hint-password = 12 sampai 256 karakter; frasa sandi dari beberapa kata paling baik
col-state = Keadaan
col-last-sign-in = Terakhir masuk
col-actions = Tindakan
user-active = aktif
user-disabled = nonaktif
user-locked = terkunci
action-disable = Nonaktifkan
action-enable = Aktifkan
action-unlock = Buka kunci
action-set-password = Tetapkan kata sandi baru
action-save = Simpan
done-added = Pengguna { $user } ditambahkan.
done-disabled = Pengguna { $user } dinonaktifkan; sesinya diakhiri.
done-enabled = Pengguna { $user } diaktifkan.
done-unlocked = Kunci pengguna { $user } dibuka.
done-password = Kata sandi baru ditetapkan untuk { $user }; sesinya diakhiri.
error-username = Nama pengguna terdiri dari 1 sampai 64 karakter a–z, 0–9, titik, garis bawah atau tanda hubung, diawali huruf atau angka.
error-display-name = Nama tampilan terdiri dari 1 sampai 100 karakter, tanpa karakter kontrol.
error-password-length = Kata sandi terdiri dari { $min } sampai { $max } karakter.
error-passwords-differ = Kedua kata sandi berbeda.
error-user-exists = Nama pengguna ini sudah ada.
error-last-admin = Ini administrator aktif terakhir: tambahkan atau aktifkan administrator lain terlebih dahulu.
error-role = Peran adalah petugas (clerk), peninjau (reviewer) atau admin.
error-no-such-user = Pengguna ini tidak ada.

## change log
changes-title = Log perubahan
changes-intro = Setiap upaya masuk (berhasil atau tidak), keluar, dan perubahan yang dibuat lewat konsol ini atau perintah vrs-node user, dalam rantai hash.
changes-caption = Perubahan, terbaru lebih dulu
changes-intact = log perubahan utuh: { $entries } entri
changes-broken = log perubahan RUSAK pada entri { $seq }: { $problem }
col-actor = Siapa
col-action = Apa
col-subject = Kepada siapa
col-detail = Rincian
col-hash = Hash
action-sign-in = masuk
action-sign-in-failed = gagal masuk
action-sign-in-throttled = upaya masuk dibatasi
action-sign-out = keluar
action-user-added = pengguna ditambahkan
action-user-disabled = pengguna dinonaktifkan
action-user-enabled = pengguna diaktifkan
action-user-locked = akun dikunci
action-user-unlocked = kunci akun dibuka
action-password-changed = kata sandi diubah
action-audit-exported = log audit diekspor

## months
month-1 = Januari
month-2 = Februari
month-3 = Maret
month-4 = April
month-5 = Mei
month-6 = Juni
month-7 = Juli
month-8 = Agustus
month-9 = September
month-10 = Oktober
month-11 = November
month-12 = Desember
