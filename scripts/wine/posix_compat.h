/*
 * Force-included (-include) when scripts/windows.sh builds the C test client
 * fixtures/clients/vdiclient_com.c for Windows with mingw-w64: that client is written against
 * the Windows COM-style interface (vdi_com.h) but uses POSIX threads and file I/O, which
 * mingw-w64 provides except for these two spellings, and files must open in binary mode
 * (O_BINARY), or a 0x1A byte ends a read and "\n" grows a "\r" on writes.
 *
 * CoCreateInstance goes to vdisim's factory (sqlvdi.dll's vdisim_CoCreateInstance, the same
 * object the Linux shims of vdi_com.h give): sqlvdi.dll is not registered as a COM server.
 * CoInitializeEx/CoUninitialize are the real ones (ole32).
 */
#ifndef VDISIM_POSIX_COMPAT_H
#define VDISIM_POSIX_COMPAT_H
#include <io.h>
#include <direct.h>
#include <sys/stat.h>
#define mkdir(path, mode) _mkdir(path)
#define fsync _commit
#include <fcntl.h>
#undef O_RDONLY
#undef O_WRONLY
#undef O_RDWR
#define O_RDONLY (_O_RDONLY | _O_BINARY)
#define O_WRONLY (_O_WRONLY | _O_BINARY)
#define O_RDWR (_O_RDWR | _O_BINARY)
#include <windows.h>
#include <objbase.h>
#define CoCreateInstance(clsid, outer, ctx, iid, ppv) vdisim_CoCreateInstance(clsid, outer, ctx, iid, ppv)
#endif
