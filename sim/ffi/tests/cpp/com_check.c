/* com_check.c - the Windows COM-style interface from C (vdi_com.h, COBJMACROS) and the plain
 * C API (vdisim.h), compiled with -std=c99 -pedantic by the cxx_header test. Written the way
 * Windows C code is: CoInitializeEx + CoCreateInstance (VDISIM_COM_SHIMS), wide names. */
#define COBJMACROS
#define VDISIM_COM_SHIMS
#include <stdio.h>
#include <string.h>
#include "vdi_com.h"
#include "vdisim.h"

static int failures;
#define EXPECT(call, want)                                                                           \
    do                                                                                               \
    {                                                                                                \
        long got_ = (long)(call);                                                                    \
        if (got_ != (long)(want))                                                                    \
        {                                                                                            \
            fprintf(stderr, "line %d: %s = 0x%lX, expected %s\n", __LINE__, #call, (unsigned long)got_, #want); \
            failures++;                                                                              \
        }                                                                                            \
    } while (0)

int main(int argc, char** argv)
{
    IClientVirtualDeviceSet2* vds = NULL;
    IClientVirtualDeviceSet* v1 = NULL;
    IClientVirtualDevice* vd = (IClientVirtualDevice*)1;
    void* unk = NULL;
    struct VDConfig cfg;
    wchar_t name[128];
    if (argc != 2)
        return 2;
    swprintf(name, 128, L"%s", argv[1]);
    memset(&cfg, 0, sizeof cfg);
    cfg.deviceCount = 1;

    EXPECT(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    EXPECT(CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL, CLSCTX_INPROC_SERVER,
                            &IID_IClientVirtualDeviceSet2, (void**)&vds),
           S_OK);
    if (!vds)
        return 1;
    /* The same object answers IClientVirtualDeviceSet and IUnknown; not IClientVirtualDevice. */
    EXPECT(IClientVirtualDeviceSet2_QueryInterface(vds, &IID_IClientVirtualDeviceSet, (void**)&v1), S_OK);
    EXPECT(v1 == (IClientVirtualDeviceSet*)vds, 1);
    EXPECT(IClientVirtualDeviceSet2_QueryInterface(vds, &IID_IClientVirtualDevice, &unk), E_NOINTERFACE);
    EXPECT(unk == NULL, 1);
    EXPECT(IClientVirtualDeviceSet2_Release((IClientVirtualDeviceSet2*)v1), 1);

    EXPECT(IClientVirtualDeviceSet2_Close(vds), VD_E_PROTOCOL);
    EXPECT(IClientVirtualDeviceSet2_CreateEx(vds, L"bad\\name", name, &cfg), VD_E_INSTANCE_NAME);
    EXPECT(IClientVirtualDeviceSet2_CreateEx(vds, NULL, name, &cfg), NOERROR);
    EXPECT(IClientVirtualDeviceSet2_GetConfiguration(vds, 0, &cfg), VD_E_TIMEOUT);
    EXPECT(IClientVirtualDeviceSet2_OpenDevice(vds, name, &vd), VD_E_PROTOCOL);
    EXPECT(vd == NULL, 1);
    EXPECT(IClientVirtualDeviceSet2_SignalAbort(vds), NOERROR);
    EXPECT(IClientVirtualDeviceSet2_GetConfiguration(vds, INFINITE, &cfg), VD_E_ABORT);
    EXPECT(IClientVirtualDeviceSet2_Close(vds), NOERROR);
    EXPECT(IClientVirtualDeviceSet2_Release(vds), 0);
    CoUninitialize();

    /* Not registered: another CLSID. */
    EXPECT(vdisim_CoCreateInstance(&IID_IClientVirtualDevice, NULL, CLSCTX_INPROC_SERVER,
                                   &IID_IClientVirtualDeviceSet2, &unk),
           REGDB_E_CLASSNOTREG);

    /* The plain C API. */
    vdisim_set* s = vdisim_set_new();
    vdisim_device* d = (vdisim_device*)1;
    EXPECT(vdisim_set_close(s), VD_E_PROTOCOL);
    EXPECT(vdisim_set_create(s, argv[1], &cfg), NOERROR);
    EXPECT(vdisim_set_open_device(s, argv[1], &d), VD_E_PROTOCOL);
    EXPECT(d == NULL, 1);
    EXPECT(vdisim_set_get_configuration(s, 0, &cfg), VD_E_TIMEOUT);
    EXPECT(strcmp(vdisim_error_name(VD_E_TIMEOUT), "VD_E_TIMEOUT"), 0);
    EXPECT(vdisim_set_close(s), NOERROR);
    vdisim_set_free(s);

    printf("com_check: %s (vdisim %s)\n", failures ? "FAILED" : "ok", vdisim_version());
    return failures ? 1 : 0;
}
