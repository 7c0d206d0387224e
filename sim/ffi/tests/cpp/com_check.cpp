// com_check.cpp - the COM-style interface from C++ (vdi_com.h without CINTERFACE): abstract
// classes whose vtables match the library's, called with ->Method(...) as on Windows.
#define VDISIM_COM_SHIMS
#include <cstdio>
#include <cstring>
#include <cwchar>
#include "vdi_com.h"

int main(int argc, char** argv)
{
    if (argc != 2)
        return 2;
    wchar_t name[128];
    swprintf(name, 128, L"%s", argv[1]);
    IClientVirtualDeviceSet2* vds = nullptr;
    if (CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, NULL, CLSCTX_INPROC_SERVER, IID_IClientVirtualDeviceSet2,
                         (void**)&vds) != S_OK)
        return 1;
    VDConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.deviceCount = 2;
    int bad = 0;
    bad += vds->Close() != VD_E_PROTOCOL;
    bad += vds->CreateEx(NULL, name, &cfg) != NOERROR;
    bad += vds->GetConfiguration(0, &cfg) != VD_E_TIMEOUT;
    bad += vds->SignalAbort() != NOERROR;
    bad += vds->Close() != NOERROR;
    bad += vds->AddRef() != 2;
    bad += vds->Release() != 1;
    bad += vds->Release() != 0;
    printf("com_check.cpp: %s\n", bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
