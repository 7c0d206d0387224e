/*
 * bcryptprimitives.dll stub for Wine < 9 (issue 9).
 *
 * Rust >= 1.78 programs for Windows draw their random numbers (HashMap seeds) from
 * bcryptprimitives.dll!ProcessPrng, which Wine 8.0 does not ship: such programs fail to start.
 * This DLL exports only ProcessPrng and forwards to bcrypt's system RNG (BCryptGenRandom with
 * BCRYPT_USE_SYSTEM_PREFERRED_RNG), which Wine 8.0 implements. scripts/windows.sh builds it with
 * mingw-w64 and copies it into the Wine prefix's system32. It is never used on real Windows,
 * where the system DLL provides ProcessPrng (Windows 10 and later).
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll processprng.c \
 *            bcryptprimitives.def -lbcrypt
 */
#include <windows.h>
#include <bcrypt.h>

#ifndef BCRYPT_USE_SYSTEM_PREFERRED_RNG
#define BCRYPT_USE_SYSTEM_PREFERRED_RNG 0x00000002
#endif

/* Same contract as the system one: fill cbData bytes, return TRUE (it never fails on Windows;
 * we return FALSE only if the underlying RNG reports an error). */
BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
{
    while (cbData > 0) {
        ULONG chunk = cbData > 0x40000000 ? 0x40000000 : (ULONG)cbData;
        if (BCryptGenRandom(NULL, pbData, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        pbData += chunk;
        cbData -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
