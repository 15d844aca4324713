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

## workflow: imports, release preview, approval queue (imports.rs, preview.rs, approvals.rs)
import-nav = Impor
import-title = Impor catatan
import-intro = Unggah ekspor (CSV, JSON Lines, XLSX atau ODS) dengan tata letak templat atau dengan pemetaan. Anda melihat hasil impor (baris diterima, baris ditolak beserta nomor baris dan alasannya, duplikat) sebelum apa pun disimpan; lalu simpan atau batalkan.
import-records = Catatan di penyimpanan: { $n }
import-field-file = Berkas yang diimpor
import-file-hint = .csv, .jsonl, .ndjson, .xlsx atau .ods; paling besar { $mib } MiB.
import-field-mapping = Pemetaan
import-mapping-template = tidak ada: kolom templat
import-field-mapping-file = Atau unggah pemetaan (TOML)
import-mapping-hint = Pemetaan yang diunggah dipakai sebagai ganti pilihan di atas.
import-field-sheet = Lembar (hanya lembar kerja)
import-sheet-hint = Kosong: lembar dari pemetaan, atau lembar pertama.
import-preview-button = Unggah dan pratinjau
import-waiting = Unggahan yang menunggu keputusan
import-waiting-none = Tidak ada unggahan yang menunggu.
import-waiting-caption = Unggahan yang sudah dipratinjau tetapi belum disimpan atau dibatalkan (dihapus setelah satu jam)
import-waiting-summary = { $imported } baru, { $rejected } ditolak, { $duplicates } duplikat
import-col-file = Berkas
import-col-by = Diunggah oleh
import-col-preview = Pratinjau
import-col-line = Baris
import-col-reason = Alasan
import-preview-title = Pratinjau impor
import-preview-intro = Belum ada yang disimpan. Inilah yang akan terjadi jika berkas ini diimpor; simpan untuk menyimpan baris yang diterima, atau batalkan.
import-expires = Disimpan sampai
import-counts-caption = Hasil impor ini
import-rows = Baris dibaca
import-accepted = Baris diterima (catatan baru)
import-rejected = Baris ditolak
import-duplicates = Duplikat (sudah tersimpan, atau muncul lebih awal di berkas)
import-skipped = Baris yang dilewati pemetaan
import-rejections-caption = Baris yang ditolak, dengan nomor baris awalnya
import-rejections-omitted = { $n } baris ditolak lainnya dihitung tetapi tidak dicantumkan.
import-commit-button = Simpan: { $n } catatan
import-cancel-button = Batalkan: jangan simpan apa pun
import-back = Kembali ke impor
import-committed = Diimpor: { $imported } catatan baru, { $rejected } baris ditolak, { $duplicates } duplikat.
import-cancelled = Unggahan dibatalkan. Tidak ada yang diimpor.
import-error-no-file = Pilih berkas yang akan diimpor.
import-error-type = Jenis berkas ini tidak dapat diimpor: gunakan .csv, .jsonl, .ndjson, .xlsx atau .ods.
import-error-form = Unggahan tidak dapat dibaca sebagai formulir halaman ini. Tidak ada yang disimpan; coba lagi.
import-error-too-many = Sudah ada { $n } unggahan yang menunggu: simpan atau batalkan salah satunya dulu.
import-error-mapping = Pemetaan tidak dapat dipakai: { $reason }
import-error-file = Berkas ini tidak dapat diimpor: { $reason }. Tidak ada yang disimpan.
import-error-changed = Unggahan yang tersimpan bukan berkas yang dipratinjau. Tidak ada yang diimpor; unggah lagi.
import-too-large-title = Berkas terlalu besar
import-too-large-message = Unggahan lebih besar daripada yang diterima konsol ini. Tidak ada yang disimpan. Pecah berkasnya, atau impor dengan vrs-node import.
action-import-previewed = impor dipratinjau
action-import-committed = impor disimpan
action-import-cancelled = impor dibatalkan
preview-nav = Pratinjau rilis
preview-title = Pratinjau rilis
preview-intro = Ini pandangan node sendiri: apa yang akan dirilis node ini untuk pertanyaan tersebut, dengan satu tarikan derau, dan berapa biayanya. Tidak ada yang dirilis, dibebankan, atau dicatat. Koordinator yang mengajukan pertanyaan yang sama mendapat derau sendiri dan dibebani biaya.
preview-field-unit = Satuan
preview-field-by = Kelompokkan menurut
preview-by-none = (tidak ada)
preview-field-from = Dari
preview-field-to = Sampai
preview-period-hint = YYYY, YYYY-Qn atau YYYY-MM; kosong: setiap bulan yang dicakup node.
preview-field-margins = Sertakan juga total (margin)
preview-field-where = Saringan
preview-where-hint = DIM=V[,V…]; beberapa dipisahkan titik koma, mis. mode=sea; origin=MMR,BGD
preview-button = Pratinjau
preview-error = Pertanyaan ini tidak dapat dipratinjau: { $reason }
preview-error-long = Salah satu isian formulir ini terlalu panjang.
preview-cost = Koordinator yang menanyakan ini akan memakai ρ { $rho } pada masing-masing dari { $n } triwulan ({ $quarters }); { $cells } sel; unit privasi: { $unit }.
preview-sigma = Derau: σ { $sigma } per sel (95% nilai dalam ± { $half }).
preview-refused = Pertanyaan ini akan ditolak: triwulan { $quarter } hanya punya sisa ρ { $left }.
preview-budget-caption = Anggaran triwulan yang disentuhnya (semua pemanggil)
preview-col-left = Sisa ρ sekarang
preview-col-after = Sisa ρ sesudahnya
preview-short = sisa tidak cukup
preview-table-caption = Apa yang akan dirilis node (satu tarikan derau)
preview-col-interval = Interval 95%
preview-suppressed = disembunyikan ({ $reason })
preview-bar-suppressed = disembunyikan
preview-chart-label = Nilai yang dirilis, dengan interval 95%-nya
preview-chart-omitted = ({ $shown } sel pertama dari { $n }; tabel mencantumkan semuanya)
approval-nav = Persetujuan
approval-title = Antrean persetujuan
approval-intro = Setiap kueri baru dari koordinator menunggu di sini sampai peninjau memutuskan. Menyetujui membuat permintaan berikutnya dari koordinator dengan id kueri yang sama dijawab (dan dibebankan); menolak membuatnya ditolak.
approval-auto-note = Node ini langsung menjawab kueri ([approval] mode = "auto"): tidak ada yang menunggu di sini. Kueri yang ditahan sebelumnya tetap dicantumkan.
approval-held = Menunggu keputusan
approval-none = Tidak ada kueri yang menunggu.
approval-caller = Ditanyakan oleh
approval-received = Diterima
approval-question = Pertanyaan
approval-cost-label = Akan memakai
approval-left-label = Akan menyisakan
approval-cost = ρ { $rho } pada masing-masing dari { $n } triwulan: { $quarters }
approval-cost-unknown = tidak dapat dihitung (lihat log node)
approval-cost-rules = tanpa anggaran (mode rules_v1)
approval-cost-invalid = kueri ini akan ditolak sebagaimana adanya
approval-left = ρ { $after } pada triwulan yang paling ketat (dari anggaran node atau jatah pemanggil ini)
approval-left-short = tidak cukup: sisa ρ { $left }, sehingga akan ditolak
approval-approve = Setujui
approval-deny = Tolak
approval-approved = { $id } disetujui: permintaan berikutnya dari koordinator dengan id ini dijawab.
approval-denied = { $id } ditolak: permintaan berikutnya dari koordinator dengan id ini ditolak.
approval-error-gone = Kueri ini tidak lagi menunggu (sudah diputuskan, atau tidak dikenal).
approval-decided-caption = Kueri yang sudah diputuskan (terbaru lebih dulu)
approval-state-pending = menunggu
approval-state-approved = disetujui, belum diambil
approval-state-denied = ditolak
approval-state-answered = disetujui dan dijawab
approval-words = { $unit } menurut { $dims }
approval-words-total = { $unit }, satu total
approval-and = dan
approval-open-end = terbuka
approval-words-period = , { $from } sampai { $to }
approval-words-filter = , hanya { $dim }: { $values }
approval-words-margins = , dengan total
approval-words-caller = , ditanyakan oleh { $caller }
action-query-approved = kueri disetujui
action-query-denied = kueri ditolak
