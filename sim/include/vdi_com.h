/*
 * vdi_com.h - the Windows vdi.h COM-style client interface (SPEC §1.1), served by vdisim's
 * libsqlvdi.so, so C (or C++) code written against IClientVirtualDeviceSet2 runs on Linux.
 *
 * What differs from Windows: there is no COM runtime. Get the object from
 *     vdisim_CreateClientVirtualDeviceSet2((void**)&vds)
 * or, keeping the Windows call shape,
 *     vdisim_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL, CLSCTX_INPROC_SERVER,
 *                             &IID_IClientVirtualDeviceSet2, (void**)&vds)
 * Define VDISIM_COM_SHIMS before including to get CoInitializeEx/CoUninitialize/
 * CoCreateInstance as macros over it (C callers pass &CLSID..., as usual in C).
 * LPCWSTR is a wchar_t string (UTF-32 on Linux, so L"..." literals work; do not compile with
 * -fshort-wchar). Timeouts are DWORD milliseconds, INFINITE = 0xFFFFFFFF.
 * Close invalidates device interfaces (their calls then return VD_E_PROTOCOL); the set's
 * last Release frees everything.
 *
 * In C the interfaces are vtable structs (lpVtbl first, IUnknown slots first); with
 * COBJMACROS the usual IClientVirtualDeviceSet2_Create(This, ...) macros exist. In C++ (unless
 * CINTERFACE is defined) they are abstract classes with the same vtable layout.
 */
#ifndef VDISIM_VDI_COM_H_
#define VDISIM_VDI_COM_H_

#include <stdint.h>
#include <wchar.h>
#include "vdi.h"
#include "vdierror.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef _WIN32
#include <windows.h>
#else
#define STDMETHODCALLTYPE
typedef int32_t HRESULT;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef uint64_t DWORDLONG;
typedef uint8_t BYTE;
typedef wchar_t WCHAR;
typedef const WCHAR* LPCWSTR;
typedef struct _GUID
{
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t  Data4[8];
} GUID;
typedef GUID IID;
typedef GUID CLSID;
#ifdef __cplusplus
#define REFIID const IID&
#define REFCLSID const CLSID&
#else
#define REFIID const IID*
#define REFCLSID const CLSID*
#endif
#ifndef S_OK
#define S_OK ((HRESULT)0)
#endif
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#define E_NOINTERFACE ((HRESULT)0x80004002)
#define E_POINTER ((HRESULT)0x80004003)
#define E_INVALIDARG ((HRESULT)0x80070057)
#define CLASS_E_NOAGGREGATION ((HRESULT)0x80040110)
#define REGDB_E_CLASSNOTREG ((HRESULT)0x80040154)
#define CLSCTX_INPROC_SERVER 0x1
#define COINIT_MULTITHREADED 0x0
#endif /* _WIN32 */

#ifndef INFINITE
#define INFINITE 0xFFFFFFFF
#endif

/* Win32 completion codes beyond the ones vdi.h defines (SPEC §2.5). */
#ifndef ERROR_INVALID_HANDLE
#define ERROR_INVALID_HANDLE      6L
#endif
#ifndef ERROR_NO_DATA_DETECTED
#define ERROR_NO_DATA_DETECTED    1104L
#endif
#ifndef ERROR_IO_DEVICE
#define ERROR_IO_DEVICE           1117L
#endif

/* SPEC §1.1. The CLSID is the IID of IClientVirtualDeviceSet. */
static const GUID IID_IClientVirtualDevice =
    {0x40700424, 0x0080, 0x11d2, {0x85, 0x1f, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59}};
static const GUID IID_IClientVirtualDeviceSet =
    {0x40700425, 0x0080, 0x11d2, {0x85, 0x1f, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59}};
static const GUID IID_IClientVirtualDeviceSet2 =
    {0xd0e6eb07, 0x7a62, 0x11d2, {0x85, 0x73, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59}};
#define CLSID_MSSQL_ClientVirtualDeviceSet IID_IClientVirtualDeviceSet

#if defined(__cplusplus) && !defined(CINTERFACE)

struct IClientVirtualDevice;

struct IVdisimUnknown
{
    virtual HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void** ppvObject) = 0;
    virtual ULONG STDMETHODCALLTYPE AddRef() = 0;
    virtual ULONG STDMETHODCALLTYPE Release() = 0;
};

struct IClientVirtualDevice : public IVdisimUnknown
{
    virtual HRESULT STDMETHODCALLTYPE GetCommand(DWORD dwTimeOut, struct VDC_Command** ppCmd) = 0;
    virtual HRESULT STDMETHODCALLTYPE CompleteCommand(struct VDC_Command* pCmd, DWORD dwCompletionCode,
                                                      DWORD dwBytesTransferred, DWORDLONG dwlPosition) = 0;
};

struct IClientVirtualDeviceSet : public IVdisimUnknown
{
    virtual HRESULT STDMETHODCALLTYPE Create(LPCWSTR lpName, struct VDConfig* pCfg) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetConfiguration(DWORD dwTimeOut, struct VDConfig* pCfg) = 0;
    virtual HRESULT STDMETHODCALLTYPE OpenDevice(LPCWSTR lpName, IClientVirtualDevice** ppVirtualDevice) = 0;
    virtual HRESULT STDMETHODCALLTYPE Close() = 0;
    virtual HRESULT STDMETHODCALLTYPE SignalAbort() = 0;
    virtual HRESULT STDMETHODCALLTYPE OpenInSecondary(LPCWSTR lpSetName) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetBufferHandle(BYTE* pBuffer, DWORD* pBufferHandle) = 0;
    virtual HRESULT STDMETHODCALLTYPE MapBufferHandle(DWORD dwBuffer, BYTE** ppBuffer) = 0;
};

struct IClientVirtualDeviceSet2 : public IClientVirtualDeviceSet
{
    virtual HRESULT STDMETHODCALLTYPE CreateEx(LPCWSTR lpInstanceName, LPCWSTR lpName, struct VDConfig* pCfg) = 0;
    virtual HRESULT STDMETHODCALLTYPE OpenInSecondaryEx(LPCWSTR lpInstanceName, LPCWSTR lpSetName) = 0;
};

#else /* C style interface */

typedef struct IClientVirtualDevice IClientVirtualDevice;
typedef struct IClientVirtualDeviceSet IClientVirtualDeviceSet;
typedef struct IClientVirtualDeviceSet2 IClientVirtualDeviceSet2;

typedef struct IClientVirtualDeviceVtbl
{
    HRESULT (STDMETHODCALLTYPE *QueryInterface)(IClientVirtualDevice* This, REFIID riid, void** ppvObject);
    ULONG (STDMETHODCALLTYPE *AddRef)(IClientVirtualDevice* This);
    ULONG (STDMETHODCALLTYPE *Release)(IClientVirtualDevice* This);
    HRESULT (STDMETHODCALLTYPE *GetCommand)(IClientVirtualDevice* This, DWORD dwTimeOut, struct VDC_Command** ppCmd);
    HRESULT (STDMETHODCALLTYPE *CompleteCommand)(IClientVirtualDevice* This, struct VDC_Command* pCmd,
                                                 DWORD dwCompletionCode, DWORD dwBytesTransferred,
                                                 DWORDLONG dwlPosition);
} IClientVirtualDeviceVtbl;

struct IClientVirtualDevice
{
    const struct IClientVirtualDeviceVtbl* lpVtbl;
};

typedef struct IClientVirtualDeviceSet2Vtbl
{
    HRESULT (STDMETHODCALLTYPE *QueryInterface)(IClientVirtualDeviceSet2* This, REFIID riid, void** ppvObject);
    ULONG (STDMETHODCALLTYPE *AddRef)(IClientVirtualDeviceSet2* This);
    ULONG (STDMETHODCALLTYPE *Release)(IClientVirtualDeviceSet2* This);
    HRESULT (STDMETHODCALLTYPE *Create)(IClientVirtualDeviceSet2* This, LPCWSTR lpName, struct VDConfig* pCfg);
    HRESULT (STDMETHODCALLTYPE *GetConfiguration)(IClientVirtualDeviceSet2* This, DWORD dwTimeOut,
                                                  struct VDConfig* pCfg);
    HRESULT (STDMETHODCALLTYPE *OpenDevice)(IClientVirtualDeviceSet2* This, LPCWSTR lpName,
                                            IClientVirtualDevice** ppVirtualDevice);
    HRESULT (STDMETHODCALLTYPE *Close)(IClientVirtualDeviceSet2* This);
    HRESULT (STDMETHODCALLTYPE *SignalAbort)(IClientVirtualDeviceSet2* This);
    HRESULT (STDMETHODCALLTYPE *OpenInSecondary)(IClientVirtualDeviceSet2* This, LPCWSTR lpSetName);
    HRESULT (STDMETHODCALLTYPE *GetBufferHandle)(IClientVirtualDeviceSet2* This, BYTE* pBuffer, DWORD* pBufferHandle);
    HRESULT (STDMETHODCALLTYPE *MapBufferHandle)(IClientVirtualDeviceSet2* This, DWORD dwBuffer, BYTE** ppBuffer);
    HRESULT (STDMETHODCALLTYPE *CreateEx)(IClientVirtualDeviceSet2* This, LPCWSTR lpInstanceName, LPCWSTR lpName,
                                          struct VDConfig* pCfg);
    HRESULT (STDMETHODCALLTYPE *OpenInSecondaryEx)(IClientVirtualDeviceSet2* This, LPCWSTR lpInstanceName,
                                                   LPCWSTR lpSetName);
} IClientVirtualDeviceSet2Vtbl;

struct IClientVirtualDeviceSet2
{
    const struct IClientVirtualDeviceSet2Vtbl* lpVtbl;
};

/* IClientVirtualDeviceSet is IClientVirtualDeviceSet2 without the last two slots. */
struct IClientVirtualDeviceSet
{
    const struct IClientVirtualDeviceSet2Vtbl* lpVtbl;
};

#ifdef COBJMACROS
#define IClientVirtualDevice_QueryInterface(This, riid, ppv) ((This)->lpVtbl->QueryInterface(This, riid, ppv))
#define IClientVirtualDevice_AddRef(This) ((This)->lpVtbl->AddRef(This))
#define IClientVirtualDevice_Release(This) ((This)->lpVtbl->Release(This))
#define IClientVirtualDevice_GetCommand(This, t, pp) ((This)->lpVtbl->GetCommand(This, t, pp))
#define IClientVirtualDevice_CompleteCommand(This, c, code, bytes, pos) \
    ((This)->lpVtbl->CompleteCommand(This, c, code, bytes, pos))
#define IClientVirtualDeviceSet2_QueryInterface(This, riid, ppv) ((This)->lpVtbl->QueryInterface(This, riid, ppv))
#define IClientVirtualDeviceSet2_AddRef(This) ((This)->lpVtbl->AddRef(This))
#define IClientVirtualDeviceSet2_Release(This) ((This)->lpVtbl->Release(This))
#define IClientVirtualDeviceSet2_Create(This, name, cfg) ((This)->lpVtbl->Create(This, name, cfg))
#define IClientVirtualDeviceSet2_GetConfiguration(This, t, cfg) ((This)->lpVtbl->GetConfiguration(This, t, cfg))
#define IClientVirtualDeviceSet2_OpenDevice(This, name, pp) ((This)->lpVtbl->OpenDevice(This, name, pp))
#define IClientVirtualDeviceSet2_Close(This) ((This)->lpVtbl->Close(This))
#define IClientVirtualDeviceSet2_SignalAbort(This) ((This)->lpVtbl->SignalAbort(This))
#define IClientVirtualDeviceSet2_OpenInSecondary(This, name) ((This)->lpVtbl->OpenInSecondary(This, name))
#define IClientVirtualDeviceSet2_GetBufferHandle(This, p, h) ((This)->lpVtbl->GetBufferHandle(This, p, h))
#define IClientVirtualDeviceSet2_MapBufferHandle(This, h, pp) ((This)->lpVtbl->MapBufferHandle(This, h, pp))
#define IClientVirtualDeviceSet2_CreateEx(This, inst, name, cfg) ((This)->lpVtbl->CreateEx(This, inst, name, cfg))
#define IClientVirtualDeviceSet2_OpenInSecondaryEx(This, inst, name) \
    ((This)->lpVtbl->OpenInSecondaryEx(This, inst, name))
#endif /* COBJMACROS */

#endif /* C style interface */

/* The factory: a new IClientVirtualDeviceSet2 with one reference. */
HRESULT vdisim_CreateClientVirtualDeviceSet2(void** ppv);

/* CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, ...) without COM (SPEC §1.1). */
HRESULT vdisim_CoCreateInstance(const GUID* rclsid, void* pUnkOuter, DWORD dwClsContext, const GUID* riid,
                                void** ppv);

#if defined(VDISIM_COM_SHIMS) && !defined(_WIN32)
static inline HRESULT vdisim_CoInitializeEx(void* reserved, DWORD flags)
{
    (void)reserved;
    (void)flags;
    return S_OK;
}
static inline void vdisim_CoUninitialize(void) {}
#define CoInitializeEx(reserved, flags) vdisim_CoInitializeEx((reserved), (flags))
#define CoInitialize(reserved) vdisim_CoInitializeEx((reserved), 0)
#define CoUninitialize() vdisim_CoUninitialize()
#ifdef __cplusplus
#define CoCreateInstance(clsid, outer, ctx, iid, ppv) vdisim_CoCreateInstance(&(clsid), outer, ctx, &(iid), ppv)
#else
#define CoCreateInstance(clsid, outer, ctx, iid, ppv) vdisim_CoCreateInstance(clsid, outer, ctx, iid, ppv)
#endif
#endif

#ifdef __cplusplus
}
#endif

#endif /* VDISIM_VDI_COM_H_ */
