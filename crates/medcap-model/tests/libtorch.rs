//! libtorch is linked, found at run time without `LD_LIBRARY_PATH`, and
//! computes: the smallest end-to-end proof of the build setup.
#![allow(clippy::unwrap_used, missing_docs)]

use medcap_model::device::{DeviceChoice, DeviceError, runtime_info};
use medcap_model::tch::{Device, Kind, Tensor};

#[test]
fn a_matrix_product_on_the_resolved_device() {
    let device = DeviceChoice::Auto.resolve().unwrap();
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0])
        .reshape([2, 2])
        .to_device(device);
    let b = a.matmul(&a).to_kind(Kind::Float).to_device(Device::Cpu);
    let values: Vec<f32> = Vec::try_from(b.flatten(0, -1)).unwrap();
    assert_eq!(values, [7.0, 10.0, 15.0, 22.0]);
}

#[test]
fn asking_for_a_missing_cuda_device_is_an_error() {
    let info = runtime_info();
    let missing = DeviceChoice::Cuda(info.cuda_devices);
    assert_eq!(
        missing.resolve(),
        Err(DeviceError::CudaUnavailable {
            ordinal: info.cuda_devices,
            available: info.cuda_devices
        })
    );
    assert_eq!(
        DeviceChoice::Auto.resolve().unwrap().is_cuda(),
        info.cuda_available
    );
}
