use super::*;
use bytes::Bytes;

fn round_trip(t: &Tensor, encoding: GrpcTensorEncoding) -> Tensor {
    let p = tensor_to_proto(t, encoding).unwrap();
    let wire = tf::TensorProto::decode(p.encode_to_vec().as_slice()).unwrap();
    tensor_from_proto(t.name(), wire).unwrap()
}

#[test]
fn every_datatype_round_trips_in_both_encodings() {
    let tensors = vec![
        Tensor::new("a", vec![2], vec![true, false]).unwrap(),
        Tensor::new("a", vec![2], vec![1u8, 255]).unwrap(),
        Tensor::new("a", vec![2], vec![1u16, u16::MAX]).unwrap(),
        Tensor::new("a", vec![2], vec![1u32, u32::MAX]).unwrap(),
        Tensor::new("a", vec![2], vec![1u64, u64::MAX]).unwrap(),
        Tensor::new("a", vec![2], vec![-1i8, i8::MIN]).unwrap(),
        Tensor::new("a", vec![2], vec![-1i16, i16::MAX]).unwrap(),
        Tensor::new("a", vec![2], vec![-1i32, i32::MIN]).unwrap(),
        Tensor::new("a", vec![2], vec![-1i64, i64::MIN]).unwrap(),
        Tensor::new("a", vec![2], vec![f16::from_f32(1.5), f16::NEG_INFINITY]).unwrap(),
        Tensor::new("a", vec![2], vec![bf16::from_f32(-2.0), bf16::MAX]).unwrap(),
        Tensor::new("a", vec![1, 2], vec![1.25f32, f32::NAN]).unwrap(),
        Tensor::new("a", vec![2], vec![1e300f64, -3.5]).unwrap(),
        Tensor::from_byte_elements("a", vec![2], [&b"\xff"[..], b""]).unwrap(),
    ];
    for t in tensors {
        for encoding in [GrpcTensorEncoding::Content, GrpcTensorEncoding::Typed] {
            let back = round_trip(&t, encoding);
            assert_eq!(back.datatype(), t.datatype());
            assert_eq!(back.shape(), t.shape());
            assert_eq!(
                back.to_raw().unwrap(),
                t.to_raw().unwrap(),
                "{} {encoding:?}",
                t.datatype()
            );
        }
    }
}

#[test]
fn content_is_shared_and_strings_use_string_val() {
    let raw = Bytes::from(vec![0u8; 16]);
    let t = Tensor::from_raw("x", DataType::Fp32, vec![4], raw.clone()).unwrap();
    let p = tensor_to_proto(&t, GrpcTensorEncoding::Content).unwrap();
    assert_eq!(p.tensor_content.as_ptr(), raw.as_ptr());
    assert_eq!(p.dtype, tf::DataType::DtFloat as i32);
    let s = Tensor::from_strings("s", vec![1], ["hi"]).unwrap();
    let p = tensor_to_proto(&s, GrpcTensorEncoding::Content).unwrap();
    assert!(p.tensor_content.is_empty());
    assert_eq!(p.string_val, vec![Bytes::from("hi")]);
    let typed =
        tensor_to_proto(&Tensor::from_vec("i", vec![7i8]), GrpcTensorEncoding::Typed).unwrap();
    assert_eq!(typed.int_val, vec![7]);
}

fn proto(dtype: tf::DataType, dims: &[i64]) -> tf::TensorProto {
    tf::TensorProto {
        dtype: dtype as i32,
        tensor_shape: Some(dims_proto(dims.iter().copied())),
        ..Default::default()
    }
}

#[test]
fn typed_fields_fill_and_are_checked() {
    let mut p = proto(tf::DataType::DtFloat, &[2, 2]);
    p.float_val = vec![0.5];
    let t = tensor_from_proto("y", p.clone()).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.5; 4]);
    p.float_val = vec![1.0, 2.0];
    let e = tensor_from_proto("y", p.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(
        e.message().contains("2 float_val values for 4 elements"),
        "{e}"
    );
    p.float_val.clear();
    assert!(
        tensor_from_proto("y", p)
            .unwrap_err()
            .message()
            .contains("no float_val")
    );

    let mut p = proto(tf::DataType::DtInt8, &[1]);
    p.int_val = vec![300];
    assert!(
        tensor_from_proto("y", p)
            .unwrap_err()
            .message()
            .contains("does not fit INT8")
    );
    let p = proto(tf::DataType::DtComplex64, &[1]);
    assert!(
        tensor_from_proto("y", p)
            .unwrap_err()
            .message()
            .contains("no inferlink counterpart")
    );
    let p = proto(tf::DataType::DtFloat, &[-1]);
    assert!(
        tensor_from_proto("y", p)
            .unwrap_err()
            .message()
            .contains("dimension -1")
    );
    let mut p = proto(tf::DataType::DtFloat, &[3]);
    p.tensor_content = Bytes::from_static(&[0; 8]);
    let e = tensor_from_proto("y", p).unwrap_err();
    assert_eq!(e.context("output"), Some("y"));
    let mut p = proto(tf::DataType::DtFloat, &[]);
    p.tensor_shape.as_mut().unwrap().unknown_rank = true;
    assert!(tensor_from_proto("y", p).is_err());
    let mut p = proto(tf::DataType::DtFloat, &[1 << 40]);
    p.float_val = vec![1.0];
    assert!(
        tensor_from_proto("y", p)
            .unwrap_err()
            .message()
            .contains("repeats one")
    );
    // An empty string tensor needs no values.
    assert_eq!(
        tensor_from_proto("s", proto(tf::DataType::DtString, &[0]))
            .unwrap()
            .element_count(),
        0
    );
}

#[test]
fn model_specs_carry_version_or_label() {
    let m = ModelRef::new("m");
    let s = model_spec(&m, &VersionChoice::Number(3), Some("sig"));
    assert_eq!(s.signature_name, "sig");
    assert_eq!(
        s.version_choice,
        Some(tfs::model_spec::VersionChoice::Version(tfs::Int64Value {
            value: 3
        }))
    );
    let s = model_spec(&m, &VersionChoice::Label("canary".into()), None);
    assert_eq!(
        s.version_choice,
        Some(tfs::model_spec::VersionChoice::VersionLabel(
            "canary".into()
        ))
    );
    assert!(
        model_spec(&m, &VersionChoice::Latest, None)
            .version_choice
            .is_none()
    );
    let twice = [
        Tensor::from_vec("a", vec![1u8]),
        Tensor::from_vec("a", vec![1u8]),
    ];
    assert!(predict_request(s, &twice, &[], GrpcTensorEncoding::Content).is_err());
}

#[test]
fn a_fill_is_bounded_in_bytes() {
    // A few bytes of answer must not make the client build gigabytes: one string
    // repeated MAX_FILL times would be 2 GiB of element handles.
    let mut p = proto(tf::DataType::DtString, &[MAX_FILL as i64]);
    p.string_val = vec![Bytes::from_static(b"x")];
    let wire = p.encode_to_vec();
    assert!(wire.len() < 32);
    let e = tensor_from_proto("s", p).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("bytes"), "{e}");
    // Doubles up to MAX_FILL_BYTES still fill.
    let mut p = proto(tf::DataType::DtDouble, &[(MAX_FILL_BYTES / 8) as i64]);
    p.double_val = vec![0.5];
    assert_eq!(
        tensor_from_proto("d", p.clone()).unwrap().element_count(),
        MAX_FILL_BYTES / 8
    );
    p.tensor_shape = proto(tf::DataType::DtDouble, &[(MAX_FILL_BYTES / 8 + 1) as i64]).tensor_shape;
    assert!(tensor_from_proto("d", p).is_err());
}
